"""Engine settings that hold across all journeys: global frequency caps and address failures.

Plain frozen data, passed to `advance()` next to the catalog, so the streaming runtime and
`simulate` apply the same guards (both build it from `ORCHESTRATOR_GLOBAL_CAP`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.timefmt import parse_duration

__all__ = ["ADDRESS_FAILURE_CODES", "DEFAULT_CONFIG", "EngineConfig", "global_caps"]

# `message.failed` error codes that say the address itself is bad, so no later message to it
# can succeed: Twilio 21211 (invalid number), 21610 (recipient unsubscribed, i.e. replied STOP
# at the carrier), 21614 (not a mobile number); SMTP 550/551/553 hard bounces; FCM
# UNREGISTERED push tokens. Other permanent failures (a bad template, a refused payload) are
# about one message, not the address.
ADDRESS_FAILURE_CODES = frozenset(
    {"21211", "21610", "21614", "smtp_550", "smtp_551", "smtp_553", "UNREGISTERED"}
)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """`global_cap`: channel -> (max sends, period in seconds) per customer, all journeys
    together. `address_failure_codes`: failures that put the address on the suppression list."""

    global_cap: Mapping[str, tuple[int, float]] = field(default_factory=dict)
    address_failure_codes: frozenset[str] = ADDRESS_FAILURE_CODES


DEFAULT_CONFIG = EngineConfig()


def global_caps(raw: Mapping[str, Any]) -> dict[str, tuple[int, float]]:
    """`{"sms": [3, "1d"]}` -> `{"sms": (3, 86400.0)}`; raises `ValueError` saying what is wrong."""
    caps: dict[str, tuple[int, float]] = {}
    for channel, value in raw.items():
        if (
            not isinstance(value, list | tuple)
            or len(value) != 2
            or not isinstance(value[0], int)
            or isinstance(value[0], bool)
            or value[0] < 1
            or not isinstance(value[1], str)
        ):
            raise ValueError(
                f'global cap for {channel!r}: write [max, period] with max >= 1, e.g. [3, "1d"]'
            )
        caps[str(channel)] = (value[0], parse_duration(value[1]))
    return caps
