"""What every channel shares: the outbound message, a delivery's outcome, the Protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from orchestrator.errors import OrchestratorError

__all__ = [
    "Connector",
    "Delivered",
    "MalformedMessageError",
    "OutboundMessage",
    "Outcome",
    "Permanent",
    "Retry",
]


class MalformedMessageError(OrchestratorError):
    """An `outbound` record that is not a message a connector can deliver (dead-lettered)."""


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One `outbound` record, as `orchestrator.contracts.codec.outbound_message` builds it."""

    message_id: str
    customer_id: str
    journey: str
    step: str
    channel: str
    to: str | None
    content: dict[str, Any]
    raw: dict[str, Any]

    @classmethod
    def from_record(cls, data: Any) -> OutboundMessage:
        """Validate a decoded record; raises `MalformedMessageError` saying what is missing."""
        if not isinstance(data, dict):
            raise MalformedMessageError("an outbound message must be a JSON object")
        missing = [
            name
            for name in ("message_id", "customer_id", "journey", "step", "channel")
            if not isinstance(data.get(name), str) or not data[name]
        ]
        if missing:
            raise MalformedMessageError(f"outbound message without {', '.join(missing)}")
        content = data.get("content")
        if not isinstance(content, dict):
            raise MalformedMessageError("outbound message without a content object")
        to = data.get("to")
        return cls(
            message_id=data["message_id"],
            customer_id=data["customer_id"],
            journey=data["journey"],
            step=data["step"],
            channel=data["channel"],
            to=to if isinstance(to, str) and to else None,
            content=content,
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class Delivered:
    """The provider accepted the message; `provider_id` is its id for it (Twilio SID...)."""

    provider_id: str


@dataclass(frozen=True, slots=True)
class Retry:
    """A transient failure: try again, not before `after` seconds if the provider said so.

    `provider_trouble` counts it against the provider's circuit breaker (5xx, timeouts,
    refused connections); a rate-limit answer (429) does not: the provider is up.
    """

    code: str
    reason: str
    after: float | None = None
    provider_trouble: bool = True


@dataclass(frozen=True, slots=True)
class Permanent:
    """Trying again cannot help (invalid number, unsubscribed recipient, no address)."""

    code: str
    reason: str


Outcome = Delivered | Retry | Permanent


class Connector(Protocol):
    """One channel's delivery to its provider. Every failure is an `Outcome`, never raised."""

    channel: str

    def provider(self, message: OutboundMessage) -> str:
        """The provider this message goes to: rate limits and circuits are per provider."""
        ...

    async def deliver(self, message: OutboundMessage) -> Outcome:
        """Send one message and classify the provider's answer."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
