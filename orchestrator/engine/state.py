"""A customer's whole journey state as plain data: what Redis stores under `{c:<id>}`."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

from orchestrator import jsonwire

__all__ = ["APPLIED_EVENT_MEMORY", "SENT_MEMORY", "SUPPRESSED_MEMORY", "CustomerState", "Instance"]

# How many recent event ids a customer remembers for deduplication. Redelivery after a crash
# replays at most one uncommitted batch, far fewer events per customer than this.
APPLIED_EVENT_MEMORY = 256
# How many recent messages a customer remembers for fallback and the suppression list: a
# `message.failed` comes within the connectors' retry horizon, a few messages later at most.
SENT_MEMORY = 32
# How many failed addresses a customer keeps suppressed (a customer has a handful).
SUPPRESSED_MEMORY = 64
# The first byte of a stored state in the compact encoding (zlib-compressed JSON, ~40% of the
# JSON's size). States stored before it are plain JSON objects, which start with "{".
_COMPRESSED = b"z"
# zlib's fastest level: level 6 saves only ~6% more here, at twice the CPU per batch.
_LEVEL = 1


@dataclass(slots=True)
class Instance:
    """One customer's run through one journey version."""

    instance_id: str
    journey: str
    version: int
    entered_at: float
    trigger: dict[str, Any]
    step: str | None = None
    waiting: str | None = None
    timer: int = 0
    wake_at: float | None = None
    expires_at: float | None = None
    variant: str | None = None
    steps_run: int = 0
    # The customer event that last moved the instance (one that ended a `wait_for`); None
    # while that is still the trigger, which is not stored twice.
    last_event: dict[str, Any] | None = None

    def copy(self) -> Instance:
        """A shallow copy (the engine never mutates `trigger`)."""
        return Instance(
            self.instance_id,
            self.journey,
            self.version,
            self.entered_at,
            self.trigger,
            self.step,
            self.waiting,
            self.timer,
            self.wake_at,
            self.expires_at,
            self.variant,
            self.steps_run,
            self.last_event,
        )

    def to_wire(self) -> dict[str, Any]:
        """Plain JSON-able data."""
        return {
            "instance_id": self.instance_id,
            "journey": self.journey,
            "version": self.version,
            "entered_at": self.entered_at,
            "trigger": self.trigger,
            "step": self.step,
            "waiting": self.waiting,
            "timer": self.timer,
            "wake_at": self.wake_at,
            "expires_at": self.expires_at,
            "variant": self.variant,
            "steps_run": self.steps_run,
            "last_event": self.last_event,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Instance:
        """Inverse of `to_wire`."""
        return cls(**data)


@dataclass(slots=True)
class CustomerState:
    """Profile, consent, active instances, entry history, recent sends and applied event ids.

    `clock` is the customer's engine time: the latest instant their journeys were moved to
    (an applied event's time or a fired timer's due time). It never goes back.
    `channel_sends`: send times per channel under a global cap. `messages`: the recent
    messages by id (journey, step, address, fallback channels left), so a `message.failed`
    can fall back. `suppressed`: `channel:address` keys that failed permanently.
    """

    customer_id: str
    profile: dict[str, Any] = field(default_factory=dict)
    consent: dict[str, str] = field(default_factory=dict)
    instances: dict[str, Instance] = field(default_factory=dict)
    entries: dict[str, tuple[int, float]] = field(default_factory=dict)
    sends: dict[str, list[float]] = field(default_factory=dict)
    applied: list[str] = field(default_factory=list)
    clock: float = 0.0
    channel_sends: dict[str, list[float]] = field(default_factory=dict)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    suppressed: list[str] = field(default_factory=list)

    def clone(self) -> CustomerState:
        """A copy the engine may change without touching the caller's state."""
        return CustomerState(
            customer_id=self.customer_id,
            profile=dict(self.profile),
            consent=dict(self.consent),
            instances={k: v.copy() for k, v in self.instances.items()},
            entries=dict(self.entries),
            sends={k: list(v) for k, v in self.sends.items()},
            applied=list(self.applied),
            clock=self.clock,
            channel_sends={k: list(v) for k, v in self.channel_sends.items()},
            messages={k: dict(v) for k, v in self.messages.items()},
            suppressed=list(self.suppressed),
        )

    def has_applied(self, event_id: str) -> bool:
        """True when this event id was applied recently (see APPLIED_EVENT_MEMORY)."""
        return event_id in self.applied

    def mark_applied(self, event_id: str) -> None:
        """Remember an applied event id, forgetting the oldest beyond the memory size."""
        self.applied.append(event_id)
        if len(self.applied) > APPLIED_EVENT_MEMORY:
            del self.applied[: len(self.applied) - APPLIED_EVENT_MEMORY]

    def remember_message(self, message_id: str, record: dict[str, Any]) -> None:
        """Remember a sent message, forgetting the oldest beyond SENT_MEMORY."""
        self.messages[message_id] = record
        for old in list(self.messages)[: max(0, len(self.messages) - SENT_MEMORY)]:
            del self.messages[old]

    def suppress(self, key: str) -> None:
        """Put a `channel:address` key on the suppression list (oldest forgotten at the bound)."""
        if key not in self.suppressed:
            self.suppressed.append(key)
            del self.suppressed[: max(0, len(self.suppressed) - SUPPRESSED_MEMORY)]

    def to_wire(self) -> dict[str, Any]:
        """Plain JSON-able data."""
        return {
            "customer_id": self.customer_id,
            "profile": self.profile,
            "consent": self.consent,
            "instances": {k: v.to_wire() for k, v in self.instances.items()},
            "entries": {k: list(v) for k, v in self.entries.items()},
            "sends": self.sends,
            "applied": self.applied,
            "clock": self.clock,
            "channel_sends": self.channel_sends,
            "messages": self.messages,
            "suppressed": self.suppressed,
        }

    def to_stored(self) -> bytes:
        """The bytes Redis stores: the wire form, compressed (read back by `from_stored`)."""
        return _COMPRESSED + zlib.compress(jsonwire.dumps(self.to_wire()), _LEVEL)

    @classmethod
    def from_stored(cls, raw: bytes | str) -> CustomerState:
        """Inverse of `to_stored`; also reads a state stored as plain JSON by older workers,
        which restart onto existing Redis data."""
        if isinstance(raw, str):  # a client decoding replies (plain JSON only)
            raw = raw.encode()
        if raw[:1] == _COMPRESSED:
            raw = zlib.decompress(raw[1:])
        return cls.from_wire(jsonwire.loads(raw))

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> CustomerState:
        """Inverse of `to_wire`."""
        return cls(
            customer_id=data["customer_id"],
            profile=data.get("profile", {}),
            consent=data.get("consent", {}),
            instances={k: Instance.from_wire(v) for k, v in data.get("instances", {}).items()},
            entries={k: (int(v[0]), float(v[1])) for k, v in data.get("entries", {}).items()},
            sends=data.get("sends", {}),
            applied=data.get("applied", []),
            clock=float(data.get("clock", 0.0)),
            channel_sends=data.get("channel_sends", {}),
            messages=data.get("messages", {}),
            suppressed=data.get("suppressed", []),
        )
