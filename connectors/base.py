"""What every channel shares: the outbound message, a delivery's outcome, the Protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from orchestrator.contracts.base import ContractError, validate
from orchestrator.contracts.outbound import OUTBOUND_MESSAGE, OutboundMessage
from orchestrator.errors import OrchestratorError

__all__ = [
    "Bounce",
    "Connector",
    "Delivered",
    "MalformedMessageError",
    "OutboundMessage",
    "Outcome",
    "Permanent",
    "Reconciler",
    "Retry",
    "read_outbound",
]


class MalformedMessageError(OrchestratorError):
    """An `outbound` record that is not a message a connector can deliver (dead-lettered)."""


def read_outbound(data: Any) -> OutboundMessage:
    """A decoded `outbound` record as its contract (`contracts.outbound.OutboundMessage`);
    raises `MalformedMessageError` saying what is wrong."""
    try:
        return validate(OUTBOUND_MESSAGE, data, "outbound message")
    except ContractError as exc:
        raise MalformedMessageError(str(exc)) from exc


Bounce = Literal["hard", "soft"]


@dataclass(frozen=True, slots=True)
class Delivered:
    """The provider accepted the message; `provider_id` is its id for it (Twilio SID...).

    `reconciled`: not sent now, found at the provider, created by an earlier try whose
    answer was never marked (see `Reconciler`).
    """

    provider_id: str
    reconciled: bool = False


@dataclass(frozen=True, slots=True)
class Retry:
    """A transient failure: try again, not before `after` seconds if the provider said so.

    `provider_trouble` counts it against the provider's circuit breaker (5xx, timeouts,
    refused connections); a rate-limit answer (429) does not: the provider is up. `bounce`
    is `"soft"` when the recipient's server turned the address away for now (SMTP 4xx).
    `maybe_sent`: the provider may have the message all the same (no answer in time, or
    the lookup of an earlier try failed): a `Reconciler` looks for it before sending again.
    """

    code: str
    reason: str
    after: float | None = None
    provider_trouble: bool = True
    bounce: Bounce | None = None
    maybe_sent: bool = False


@dataclass(frozen=True, slots=True)
class Permanent:
    """Trying again cannot help (invalid number, unsubscribed recipient, no address).

    `bounce` is `"hard"` when the recipient's server refused the address (SMTP 5xx): a
    `message.bounced` receipt goes with the `message.failed` one.
    """

    code: str
    reason: str
    bounce: Bounce | None = None


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


@runtime_checkable
class Reconciler(Protocol):
    """A connector whose provider can say whether it already created a message.

    Asked before a message is sent again after a try that may have reached the provider
    (its worker died before marking the answer, or it timed out), so that try's message is
    recorded instead of sent twice.
    """

    async def find_sent(self, message: OutboundMessage, since: float) -> Outcome | None:
        """The provider's message created for `message` since `since` (epoch seconds):
        `Delivered(its id, reconciled=True)`; None when it has none (send it); `Retry`
        (with `maybe_sent`) when the provider could not be asked (ask again later)."""
        ...
