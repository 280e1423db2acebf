"""Segment spec messages (track, identify) as our events, as the official SDKs send them.

`userId` -> `customer_id` (else `anonymousId` -> `anonymous:<id>`), `messageId` -> `event_id`,
`timestamp` -> `occurred_at`, a track's `event` -> name through the optional name map, its
`properties` -> properties; identify's `traits` -> a `profile.updated`. `context.channel`
becomes the event's channel and the sending library is kept under `$library` of a track's
properties (not an identify's: its properties become the profile).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator import jsonwire
from orchestrator.engine.events import PROFILE_UPDATED, Event, parse_event
from orchestrator.errors import ConfigurationError, EventValidationError
from orchestrator.timefmt import format_instant

__all__ = ["IGNORED_TYPES", "load_name_map", "segment_event"]

# Spec calls we accept (Segment answers success for them) but that start no journey.
IGNORED_TYPES = frozenset({"page", "screen", "group", "alias"})


def load_name_map(path: str | None) -> dict[str, str]:
    """The `ORCHESTRATOR_API_EVENT_NAMES` file: a JSON object of Segment name -> event name."""
    if path is None:
        return {}
    try:
        data = jsonwire.loads(Path(path).read_bytes())
    except (OSError, jsonwire.JSONDecodeError) as exc:
        raise ConfigurationError(
            f"ORCHESTRATOR_API_EVENT_NAMES={path}: cannot read it as JSON ({exc}); "
            'give a JSON object such as {"Order Completed": "order.completed"}'
        ) from exc
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise ConfigurationError(
            f"ORCHESTRATOR_API_EVENT_NAMES={path}: must be a JSON object of strings, "
            'e.g. {"Order Completed": "order.completed"}'
        )
    return data


def _customer(message: Mapping[str, Any]) -> str:
    user, anonymous = message.get("userId"), message.get("anonymousId")
    if isinstance(user, str | int) and str(user):
        return str(user)
    if isinstance(anonymous, str | int) and str(anonymous):
        return f"anonymous:{anonymous}"
    raise EventValidationError("invalid event: userId or anonymousId is required")


def _event_id(message: Mapping[str, Any]) -> str:
    message_id = message.get("messageId")
    if isinstance(message_id, str) and message_id:
        return message_id
    # Without one, the message's content names it: a resend of it dedupes all the same.
    return "segment:" + hashlib.sha256(jsonwire.dumps(message)).hexdigest()[:32]


def segment_event(
    message: Any, names: Mapping[str, str], kind: str | None, now: float
) -> Event | None:
    """The event for one Segment message, None for an ignored call type (page, screen...).

    `kind` is the endpoint's call type (`/v1/track`), None for `/v1/batch` where each
    message says its own. Raises `EventValidationError` saying what is wrong.
    """
    if not isinstance(message, dict):
        raise EventValidationError("invalid event: a Segment message must be a JSON object")
    kind = kind or message.get("type")
    if kind in IGNORED_TYPES:
        return None
    context = message.get("context")
    context = context if isinstance(context, dict) else {}
    channel = context.get("channel") if isinstance(context.get("channel"), str) else None
    if kind == "track":
        event = message.get("event")
        if not isinstance(event, str) or not event:
            raise EventValidationError("invalid event: a track needs its `event` name")
        name = names.get(event, event)
        properties = message.get("properties") or {}
        library = context.get("library")
        if isinstance(properties, dict) and isinstance(library, dict):
            properties = {**properties, "$library": library}
    elif kind == "identify":
        name, properties = PROFILE_UPDATED, message.get("traits") or {}
    else:
        raise EventValidationError(
            f"invalid event: Segment call type {kind!r} is not supported; "
            "send track or identify (page, screen, group and alias are ignored)"
        )
    timestamp = message.get("timestamp") or message.get("sentAt") or format_instant(now)
    return parse_event(
        {
            "event_id": _event_id(message),
            "customer_id": _customer(message),
            "name": name,
            "occurred_at": timestamp,
            "channel": channel,
            "properties": properties,
        }
    )
