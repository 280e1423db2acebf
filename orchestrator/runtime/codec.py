"""Wire formats of the runtime: decoding inbound records, encoding what the engine decided."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from orchestrator import jsonwire
from orchestrator.engine.actions import Action, Sent, TimerCancelled, TimerFired, TimerSet
from orchestrator.engine.events import Event, parse_event
from orchestrator.errors import EventValidationError
from orchestrator.timefmt import format_instant

__all__ = [
    "DeadLetter",
    "deadletter_value",
    "decode_event",
    "inbound_record",
    "interaction_record",
    "outbound_message",
    "timer_member",
]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An input record that cannot be applied, and why."""

    reason: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def decode_event(
    value: bytes | None, key: bytes | None, topic: str, partition: int, offset: int
) -> Event | DeadLetter:
    """Decode and validate one `events` record; anything unusable becomes a `DeadLetter`."""
    if value is None:
        return DeadLetter(
            "empty record: an event needs a JSON body", topic, partition, offset, key, value
        )
    try:
        data = jsonwire.loads(value)
    except jsonwire.JSONDecodeError as exc:
        return DeadLetter(f"not valid JSON: {exc}", topic, partition, offset, key, value)
    if not isinstance(data, dict):
        return DeadLetter("an event must be a JSON object", topic, partition, offset, key, value)
    if not data.get("customer_id"):
        return DeadLetter(
            "the event names no customer: set customer_id", topic, partition, offset, key, value
        )
    try:
        event = parse_event(data, internal=True)
    except EventValidationError as exc:
        return DeadLetter(str(exc), topic, partition, offset, key, value)
    if key != event.customer_id.encode():
        # Another key may put the customer on another partition, where a second worker
        # would apply their events concurrently and out of order.
        return DeadLetter(
            f"record key {key!r} is not the customer_id {event.customer_id!r}: publish each "
            "event with its customer_id as the Kafka key",
            topic,
            partition,
            offset,
            key,
            value,
        )
    return event


def deadletter_value(letter: DeadLetter) -> bytes:
    """The `deadletter` record: original bytes (text if UTF-8, else base64), reason, source."""
    body: dict[str, Any] = {
        "reason": letter.reason,
        "source": {"topic": letter.topic, "partition": letter.partition, "offset": letter.offset},
        "key": _text_or_b64(letter.key),
    }
    original = _text_or_b64(letter.value)
    if isinstance(original, dict):
        body["value_b64"] = original["b64"]
    else:
        body["value"] = original
    return jsonwire.dumps(body)


def _text_or_b64(raw: bytes | None) -> str | dict[str, str] | None:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(raw).decode()}


def outbound_message(sent: Sent, event_id: str) -> dict[str, Any]:
    """What connectors receive: everything needed to deliver, keyed by `message_id`."""
    return {
        "message_id": sent.message_id,
        "at": format_instant(sent.at),
        "customer_id": sent.customer_id,
        "journey": sent.journey,
        "version": sent.version,
        "instance_id": sent.instance_id,
        "step": sent.step,
        "channel": sent.channel,
        "to": sent.to,
        "template": sent.template,
        "variant": sent.variant,
        "category": sent.category,
        "content": sent.content,
        "caused_by": event_id,
    }


def inbound_record(event: Event, now: float) -> dict[str, Any]:
    """The interaction record every applied inbound event leaves."""
    return {
        "record_id": f"in:{event.event_id}",
        "type": "inbound",
        "at": format_instant(now),
        "customer_id": event.customer_id,
        "event": event.to_wire(),
    }


def interaction_record(action: Action, event_id: str, index: int) -> dict[str, Any]:
    """The interaction record of one engine action (id stable across redelivery)."""
    record = action.to_record()
    record["record_id"] = f"{event_id}:{index}"
    record["caused_by"] = event_id
    if isinstance(action, Sent):
        record["message_id"] = action.message_id
        record["version"] = action.version
    if hasattr(action, "instance_id"):
        record["instance_id"] = action.instance_id
    return record


def timer_member(action: TimerSet | TimerCancelled | TimerFired) -> bytes:
    """The sorted-set member naming a timer (the same bytes for set and cancel)."""
    return jsonwire.dumps([action.customer_id, action.journey, action.instance_id, action.timer])
