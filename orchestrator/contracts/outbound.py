"""The `outbound` topic's record: a message for connectors to deliver."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import TypeAdapter

from orchestrator.contracts.base import SCHEMA_VERSION, SchemaVersion, WireRecord
from orchestrator.engine.actions import Sent
from orchestrator.timefmt import format_instant

__all__ = ["OUTBOUND_MESSAGE", "OutboundMessage"]


@dataclass(slots=True, kw_only=True)
class OutboundMessage(WireRecord):
    """Everything a connector needs to deliver one message.

    `message_id` is deterministic (the same decision always gets the same id): connectors
    deduplicate on it. `caused_by` is the `event_id` that led to the send. `survey` (nps or
    csat, omitted when None) says the message asks a survey question: connectors deliver it
    like any other; reply handling reads it to turn a reply into the survey's answer.
    """

    _omit_if_none: ClassVar[frozenset[str]] = frozenset({"survey"})

    schema_version: SchemaVersion = SCHEMA_VERSION
    message_id: str
    at: str
    customer_id: str
    journey: str
    version: int
    instance_id: str
    step: str
    channel: str
    to: str | None  # None: the connector finds the address itself
    template: str
    variant: str | None
    category: str
    content: dict[str, Any]
    caused_by: str
    survey: str | None = None

    @classmethod
    def of(cls, sent: Sent, event_id: str) -> OutboundMessage:
        """The message of a `Sent` action caused by event `event_id`."""
        return cls(
            message_id=sent.message_id,
            at=format_instant(sent.at),
            customer_id=sent.customer_id,
            journey=sent.journey,
            version=sent.version,
            instance_id=sent.instance_id,
            step=sent.step,
            channel=sent.channel,
            to=sent.to,
            template=sent.template,
            variant=sent.variant,
            category=sent.category,
            content=sent.content,
            caused_by=event_id,
            survey=sent.survey,
        )


OUTBOUND_MESSAGE: TypeAdapter[OutboundMessage] = TypeAdapter(OutboundMessage)
