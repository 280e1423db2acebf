"""Customer events: the pydantic boundary model, and the plain dataclass the engine uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from orchestrator.errors import EventValidationError
from orchestrator.timefmt import format_instant, parse_instant

__all__ = [
    "CONSENT_UPDATED",
    "JOURNEY_ARCHIVED",
    "MESSAGE_BOUNCED",
    "MESSAGE_FAILED",
    "PROFILE_UPDATED",
    "RESERVED_NAMES",
    "TIMER_FIRED",
    "Event",
    "EventIn",
    "parse_event",
    "timer_event",
]

TIMER_FIRED = "timer.fired"
PROFILE_UPDATED = "profile.updated"
CONSENT_UPDATED = "consent.updated"
JOURNEY_ARCHIVED = "journey.archived"
# A connector's receipt for a message that will never go out: the engine falls back.
MESSAGE_FAILED = "message.failed"
# With `late: true`, a bounce reported by a DSN after the message went out (engine/fallback.py).
MESSAGE_BOUNCED = "message.bounced"
RESERVED_NAMES = frozenset({TIMER_FIRED, JOURNEY_ARCHIVED})


class EventIn(BaseModel):
    """An event as channel apps send it (JSON), validated at the edge."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: str = Field(min_length=1, max_length=200)
    customer_id: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=200)
    occurred_at: str = Field(description="ISO 8601 with a zone, e.g. 2026-05-01T09:30:00Z")
    channel: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)

    @field_validator("occurred_at")
    @classmethod
    def _zoned(cls, value: str) -> str:
        parse_instant(value)
        return value


@dataclass(frozen=True, slots=True)
class Event:
    """An event inside the engine: `occurred_at` is epoch seconds."""

    event_id: str
    customer_id: str
    name: str
    occurred_at: float
    channel: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)

    def scope(self) -> dict[str, Any]:
        """The `event` variable seen by conditions and templates."""
        return {
            "event_id": self.event_id,
            "customer_id": self.customer_id,
            "name": self.name,
            "channel": self.channel,
            "occurred_at": format_instant(self.occurred_at),
            "properties": self.properties,
        }

    def to_wire(self) -> dict[str, Any]:
        """The JSON shape channel apps send (round-trips through `parse_event`)."""
        wire: dict[str, Any] = {
            "event_id": self.event_id,
            "customer_id": self.customer_id,
            "name": self.name,
            "occurred_at": format_instant(self.occurred_at),
            "properties": self.properties,
        }
        if self.channel is not None:
            wire["channel"] = self.channel
        return wire


def parse_event(data: Any, *, internal: bool = False) -> Event:
    """Validate decoded JSON into an `Event`; raises `EventValidationError` saying what is wrong.

    Names the engine produces itself (`timer.fired`, `journey.archived`) are refused unless
    `internal`: a channel app must not fire a customer's timer or archive their journey.
    """
    try:
        model = EventIn.model_validate(data)
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'event'}: "
            f"{str(err['msg']).removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise EventValidationError(f"invalid event: {reasons}") from exc
    if not internal and model.name in RESERVED_NAMES:
        raise EventValidationError(
            f"invalid event: name {model.name!r} is reserved for the engine's own events; "
            "use another name"
        )
    return Event(
        event_id=model.event_id,
        customer_id=model.customer_id,
        name=model.name,
        occurred_at=parse_instant(model.occurred_at),
        channel=model.channel,
        properties=model.properties,
    )


def timer_event(customer_id: str, journey: str, instance_id: str, timer: str, due: float) -> Event:
    """The event a due timer turns into; its id is deterministic so a double firing dedupes."""
    return Event(
        event_id=f"timer:{customer_id}:{instance_id}:{timer}",
        customer_id=customer_id,
        name=TIMER_FIRED,
        occurred_at=due,
        properties={"journey": journey, "instance": instance_id, "timer": timer},
    )
