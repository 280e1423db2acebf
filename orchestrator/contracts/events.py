"""The `events` topic's record: a customer event as channel apps and the engine write it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field, TypeAdapter

from orchestrator.contracts.base import SCHEMA_VERSION, SchemaVersion, WireRecord
from orchestrator.engine.events import Event
from orchestrator.timefmt import format_instant, parse_instant

__all__ = ["EVENT_RECORD", "EventRecord"]


def _zoned(value: str) -> str:
    parse_instant(value)
    return value


# The same rules as the engine's `EventIn` (what `simulate` reads); a test keeps them equal.
_Name = Annotated[str, Field(min_length=1, max_length=200)]
_Instant = Annotated[
    str,
    Field(description="ISO 8601 with a zone, e.g. 2026-05-01T09:30:00Z"),
    AfterValidator(_zoned),
]


@dataclass(slots=True, kw_only=True)
class EventRecord(WireRecord):
    """A customer event: inbound, a reply, a receipt, or the engine's own timer/archive events.

    `event_id` is the deduplication key: unique per customer and stable across retries.
    Unknown fields are ignored.
    """

    _omit_if_none: ClassVar[frozenset[str]] = frozenset({"channel"})

    schema_version: SchemaVersion = SCHEMA_VERSION
    event_id: _Name
    customer_id: _Name
    name: _Name
    occurred_at: _Instant
    channel: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, event: Event) -> EventRecord:
        """The record of an engine event."""
        return cls(
            event_id=event.event_id,
            customer_id=event.customer_id,
            name=event.name,
            occurred_at=format_instant(event.occurred_at),
            channel=event.channel,
            properties=event.properties,
        )

    def to_event(self) -> Event:
        """The engine's view of this record (`occurred_at` in epoch seconds)."""
        return Event(
            event_id=self.event_id,
            customer_id=self.customer_id,
            name=self.name,
            occurred_at=parse_instant(self.occurred_at),
            channel=self.channel,
            properties=self.properties,
        )


EVENT_RECORD: TypeAdapter[EventRecord] = TypeAdapter(EventRecord)
