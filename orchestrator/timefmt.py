"""Time values: durations like `24h`, ISO 8601 instants, all as float epoch seconds inside."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache

__all__ = [
    "DURATION_PATTERN",
    "format_duration",
    "format_instant",
    "parse_duration",
    "parse_instant",
]

DURATION_PATTERN = r"^\s*(\d+\s*(ms|s|m|h|d|w)\s*)+$"
_PART = re.compile(r"(\d+)\s*(ms|s|m|h|d|w)")
_FULL = re.compile(DURATION_PATTERN)
# Bounds that keep every instant the engine computes (an event's time plus waits) printable.
MIN_YEAR, MAX_YEAR = 1900, 9000
MAX_DURATION = 36500 * 86400.0
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str) -> float:
    """`"1h30m"` -> 5400.0 seconds. Raises `ValueError` with the accepted forms."""
    if not _FULL.match(text):
        raise ValueError(
            f"bad duration {text!r}: write a number and a unit (ms, s, m, h, d, w), "
            "e.g. 30m, 24h, 7d"
        )
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _PART.findall(text))
    if seconds <= 0:
        raise ValueError(f"bad duration {text!r}: it must be longer than zero")
    if seconds > MAX_DURATION:
        raise ValueError(f"bad duration {text!r}: it must be at most 100 years (36500d)")
    return seconds


def format_duration(seconds: float) -> str:
    """5400.0 -> `"1h30m"`, in days at most (as journeys write them: `7d`, not `1w`);
    `parse_duration` reads it back to the same value."""
    millis = round(seconds * 1000)
    parts: list[str] = []
    for unit in ("d", "h", "m", "s", "ms"):
        size = round(_UNIT_SECONDS[unit] * 1000)
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def parse_instant(text: str) -> float:
    """ISO 8601 with a zone (`Z` or `+02:00`) -> epoch seconds. Raises `ValueError`."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone: add Z or an offset like +00:00")
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        raise ValueError(f"timestamp {text!r} is out of range: use a year from 1900 to 9000")
    return parsed.timestamp()


@lru_cache(maxsize=8192)
def format_instant(epoch: float) -> str:
    """Epoch seconds -> ISO 8601 UTC with `Z`, milliseconds only when present."""
    moment = datetime.fromtimestamp(epoch, UTC)
    if moment.microsecond:
        text = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    else:
        text = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return text
