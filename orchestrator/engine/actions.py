"""What the engine decides: plain records the shell turns into messages, timers and audit logs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.timefmt import format_instant

__all__ = [
    "Action",
    "ConditionFailed",
    "Entered",
    "Exited",
    "LateEvent",
    "ProfileChanged",
    "Sent",
    "StepEntered",
    "Suppressed",
    "TimerCancelled",
    "TimerFired",
    "TimerSet",
]


@dataclass(frozen=True, slots=True)
class Entered:
    """A customer entered a journey."""

    at: float
    customer_id: str
    journey: str
    version: int
    instance_id: str

    def to_record(self) -> dict[str, Any]:
        """The JSON shape used by `simulate` and the interaction log."""
        return {
            "type": "enter",
            "at": format_instant(self.at),
            "customer_id": self.customer_id,
            "journey": self.journey,
            "version": self.version,
        }


@dataclass(frozen=True, slots=True)
class StepEntered:
    """An instance entered a step (every kind, each time: loops enter a step again).

    `variant` on a `split` step only: the arm chosen; `holdout` True when that arm is the
    split's holdout, None otherwise.
    """

    at: float
    customer_id: str
    journey: str
    version: int
    instance_id: str
    step: str
    variant: str | None = None
    holdout: bool | None = None

    def to_record(self) -> dict[str, Any]:
        """The JSON shape of the interaction log (`simulate` does not print step records)."""
        record: dict[str, Any] = {
            "type": "step",
            "at": format_instant(self.at),
            "customer_id": self.customer_id,
            "journey": self.journey,
            "version": self.version,
            "step": self.step,
        }
        if self.variant is not None:
            record["variant"] = self.variant
        if self.holdout is not None:
            record["holdout"] = self.holdout
        return record


@dataclass(frozen=True, slots=True)
class Sent:
    """A message goes out; `message_id` is deterministic so connectors can dedupe."""

    at: float
    customer_id: str
    journey: str
    version: int
    instance_id: str
    step: str
    channel: str
    template: str
    variant: str | None
    content: dict[str, Any]
    to: str | None
    message_id: str
    category: str
    consent: str
    survey: str | None = None

    def to_record(self) -> dict[str, Any]:
        """The JSON shape used by `simulate` and the interaction log."""
        record: dict[str, Any] = {
            "type": "send",
            "at": format_instant(self.at),
            "customer_id": self.customer_id,
            "journey": self.journey,
            "step": self.step,
            "channel": self.channel,
            "template": self.template,
        }
        if self.variant is not None:
            record["variant"] = self.variant
        record["content"] = self.content
        return record


@dataclass(frozen=True, slots=True)
class Suppressed:
    """A send that could not go out on `channel`, and why."""

    at: float
    customer_id: str
    journey: str
    instance_id: str
    step: str
    channel: str
    reason: str

    def to_record(self) -> dict[str, Any]:
        """The JSON shape used by `simulate` and the interaction log."""
        return {
            "type": "suppress",
            "at": format_instant(self.at),
            "customer_id": self.customer_id,
            "journey": self.journey,
            "step": self.step,
            "channel": self.channel,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Exited:
    """An instance ended: goal, exit_event, completed, expired or archived."""

    at: float
    customer_id: str
    journey: str
    instance_id: str
    reason: str

    def to_record(self) -> dict[str, Any]:
        """The JSON shape used by `simulate` and the interaction log."""
        return {
            "type": "exit",
            "at": format_instant(self.at),
            "customer_id": self.customer_id,
            "journey": self.journey,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class TimerSet:
    """Fire a `timer.fired` event for this instance at `due`."""

    due: float
    customer_id: str
    journey: str
    instance_id: str
    timer: str

    def to_record(self) -> dict[str, Any]:
        """The JSON shape used by the interaction log."""
        return {
            "type": "timer",
            "at": format_instant(self.due),
            "customer_id": self.customer_id,
            "journey": self.journey,
            "timer": self.timer,
        }


@dataclass(frozen=True, slots=True)
class TimerCancelled:
    """A timer set earlier is no longer needed (firing it would be a no-op anyway)."""

    customer_id: str
    journey: str
    instance_id: str
    timer: str

    def to_record(self) -> dict[str, Any]:
        """The JSON shape used by the interaction log."""
        return {
            "type": "timer_cancelled",
            "customer_id": self.customer_id,
            "journey": self.journey,
            "timer": self.timer,
        }


@dataclass(frozen=True, slots=True)
class TimerFired:
    """A pending timer came due and fired (before the event that reached its time, if any)."""

    due: float
    customer_id: str
    journey: str
    instance_id: str
    timer: str

    def to_record(self) -> dict[str, Any]:
        """The JSON shape used by the interaction log."""
        return {
            "type": "timer_fired",
            "at": format_instant(self.due),
            "customer_id": self.customer_id,
            "journey": self.journey,
            "timer": self.timer,
        }


@dataclass(frozen=True, slots=True)
class LateEvent:
    """An event arrived after the customer's journeys had moved past its time.

    It was applied `at` the customer's current engine time, not rewound to `occurred_at`.
    """

    at: float
    customer_id: str
    event_id: str
    occurred_at: float

    def to_record(self) -> dict[str, Any]:
        """The JSON shape used by the interaction log and `simulate`'s stderr."""
        return {
            "type": "late",
            "at": format_instant(self.at),
            "customer_id": self.customer_id,
            "event_id": self.event_id,
            "occurred_at": format_instant(self.occurred_at),
            "late_by_seconds": round(self.at - self.occurred_at, 3),
        }


@dataclass(frozen=True, slots=True)
class ProfileChanged:
    """An `update_profile` step merged values into the profile."""

    at: float
    customer_id: str
    journey: str
    step: str
    changes: dict[str, Any]

    def to_record(self) -> dict[str, Any]:
        """The JSON shape used by the interaction log."""
        return {
            "type": "profile",
            "at": format_instant(self.at),
            "customer_id": self.customer_id,
            "journey": self.journey,
            "step": self.step,
            "changes": self.changes,
        }


@dataclass(frozen=True, slots=True)
class ConditionFailed:
    """A condition or template raised at runtime; it counted as false / the send was skipped."""

    at: float
    customer_id: str
    journey: str
    step: str | None
    expression: str
    error: str

    def to_record(self) -> dict[str, Any]:
        """The JSON shape used by the interaction log and `simulate`'s stderr."""
        return {
            "type": "error",
            "at": format_instant(self.at),
            "customer_id": self.customer_id,
            "journey": self.journey,
            "step": self.step,
            "expression": self.expression,
            "error": self.error,
        }


Action = (
    Entered
    | StepEntered
    | Sent
    | Suppressed
    | Exited
    | TimerSet
    | TimerCancelled
    | TimerFired
    | LateEvent
    | ProfileChanged
    | ConditionFailed
)
