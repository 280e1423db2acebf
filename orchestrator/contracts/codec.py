"""Decoding `events` records (or why one is a dead letter), and bounded dead letters."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from pydantic import ValidationError

from orchestrator import jsonwire
from orchestrator.contracts.base import describe
from orchestrator.contracts.deadletters import Base64Key, DeadLetterRecord, DeadLetterSource
from orchestrator.contracts.events import EVENT_RECORD
from orchestrator.engine.actions import TimerCancelled, TimerFired, TimerSet
from orchestrator.engine.events import RESERVED_NAMES, Event

__all__ = [
    "DEADLETTER_EXCERPT_BYTES",
    "DEADLETTER_MAX_BYTES",
    "DeadLetter",
    "Headers",
    "OriginCheck",
    "bounded_reason",
    "deadletter_key",
    "deadletter_value",
    "decode_event",
    "timer_member",
]

# Kafka record headers as clients hand them over: (name, bytes) pairs, or a mapping (faust).
Headers = Sequence[tuple[str, bytes | None]] | Mapping[str, bytes | None] | None

# A dead letter keeps at most this many bytes of the original (and at most this many bytes of
# JSON for it): enough to recognise the record and see what is wrong. The rest is in the
# source topic at `source` (checked by `sha256`). Keeping whole originals made dead letters
# the broker refused: base64 and JSON escaping (6 bytes per control character) grew a
# ~200 KB record past 1 MB, and the refusal stopped every partition of the batch.
DEADLETTER_EXCERPT_BYTES = 16 * 1024
# Error messages may quote the input (a 1 MB `occurred_at` would be quoted whole).
_REASON_MAX_BYTES = 4 * 1024
# Keys are customer ids; a longer one is garbage, and it is also the dead letter's own key.
_KEY_MAX_BYTES = 1024
_TOPIC_MAX_BYTES = 512
# Every encoded dead letter fits in this, whatever the input (the excerpts above plus small
# fixed fields); far below the producer's 1 MiB `max_request_size`.
DEADLETTER_MAX_BYTES = 32 * 1024


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An input record that cannot be applied, and why."""

    reason: str
    topic: str
    partition: int | None  # None: a record that never reached a partition (refused produce)
    offset: int | None
    key: bytes | None
    value: bytes | None


class OriginCheck(Protocol):
    """Tells whether a record carries the engine's proof of origin (see `runtime/origin.py`)."""

    def verify(self, key: bytes | None, value: bytes, headers: Headers) -> str | None:
        """None if the record was signed by the engine, else why it was not accepted."""
        ...


def decode_event(
    value: bytes | None,
    key: bytes | None,
    topic: str,
    partition: int,
    offset: int,
    *,
    headers: Headers = None,
    origin: OriginCheck | None = None,
) -> Event | DeadLetter:
    """Decode and validate one `events` record; anything unusable becomes a `DeadLetter`.

    `timer.fired` and `journey.archived` are accepted only with the engine's proof of origin
    (checked by `origin`; without one, none is accepted): anyone who may write to `events`
    could otherwise fire a customer's timers or end their journeys.
    """
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
        event = EVENT_RECORD.validate_python(data).to_event()
    except ValidationError as exc:
        return DeadLetter(f"invalid event: {describe(exc)}", topic, partition, offset, key, value)
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
    if event.name in RESERVED_NAMES:
        problem = (
            "no key to check it with" if origin is None else origin.verify(key, value, headers)
        )
        if problem is not None:
            return DeadLetter(
                f"forged engine event: {event.name!r} is produced only by the engine, and this "
                f"record's proof of origin is not valid ({problem}); it was not applied. "
                "Channel apps cannot send it; if a worker or operator did, give every worker "
                "and operator the same ORCHESTRATOR_ENGINE_KEY (or none, to share Redis's)",
                topic,
                partition,
                offset,
                key,
                value,
            )
    return event


def deadletter_key(letter: DeadLetter) -> bytes | None:
    """The dead letter's Kafka key: the original key, cut to a bounded length."""
    return None if letter.key is None else letter.key[:_KEY_MAX_BYTES]


def deadletter_value(letter: DeadLetter) -> bytes:
    """The `deadletter` record, at most `DEADLETTER_MAX_BYTES` whatever the input.

    It holds the reason, the source (topic/partition/offset), the original key, and the
    original value's length, sha256 and first bytes: as text in `value` if they are UTF-8,
    else base64 in `value_b64`; `truncated` says whether that excerpt is the whole value.
    """
    source = DeadLetterSource(
        topic=_excerpt(letter.topic.encode(), _TOPIC_MAX_BYTES)[1],
        partition=letter.partition,
        offset=letter.offset,
    )
    key: str | Base64Key | None = None
    if letter.key is not None:
        kind, text = _excerpt(letter.key, _KEY_MAX_BYTES)
        key = text if kind == "text" else Base64Key(b64=text)
    reason = bounded_reason(letter.reason)
    raw = letter.value
    if raw is None:
        record = DeadLetterRecord(
            reason=reason,
            source=source,
            key=key,
            original_length=None,
            sha256=None,
            truncated=False,
        )
        return record.to_json()
    kind, excerpt = _excerpt(raw, DEADLETTER_EXCERPT_BYTES)
    kept = len(excerpt.encode()) if kind == "text" else len(base64.b64decode(excerpt))
    record = DeadLetterRecord(
        reason=reason,
        source=source,
        key=key,
        value=excerpt if kind == "text" else None,
        value_b64=excerpt if kind == "b64" else None,
        original_length=len(raw),
        sha256=hashlib.sha256(raw).hexdigest(),
        truncated=kept < len(raw),
    )
    return record.to_json()


def bounded_reason(reason: str) -> str:
    """`reason` cut to at most a few KiB: error messages may quote (huge) input."""
    return _excerpt(reason.encode(), _REASON_MAX_BYTES)[1]


def _excerpt(raw: bytes, budget: int) -> tuple[str, str]:
    """("text", prefix) if `raw` starts as UTF-8, else ("b64", base64 of a prefix).

    The prefix is the longest whose JSON encoding (quotes and escapes included) takes at most
    `budget` + 2 bytes, so a record of control characters cannot grow past the budget.
    """
    head = raw[:budget]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A cut through the last character is the truncation's doing, not the input's.
        if exc.start < len(head) - 3 or exc.end != len(head) or len(head) == len(raw):
            return "b64", base64.b64encode(raw[: budget * 3 // 4]).decode()
        text = head[: exc.start].decode("utf-8")
    if len(jsonwire.dumps(text)) <= budget + 2:
        return "text", text
    low, high = 0, len(text)  # invariant: text[:low] fits, text[:high + 1] does not
    while low < high:
        middle = (low + high + 1) // 2
        if len(jsonwire.dumps(text[:middle])) <= budget + 2:
            low = middle
        else:
            high = middle - 1
    return "text", text[:low]


def timer_member(action: TimerSet | TimerCancelled | TimerFired) -> bytes:
    """The sorted-set member naming a timer (the same bytes for set and cancel)."""
    return jsonwire.dumps([action.customer_id, action.journey, action.instance_id, action.timer])
