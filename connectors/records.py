"""What connectors write to Kafka: receipts as events, provider outcomes as interaction records."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from connectors.base import Delivered, OutboundMessage, Outcome, Permanent, Retry
from connectors.dsn import DeliveryReport
from orchestrator.contracts.base import validate
from orchestrator.contracts.codec import DeadLetter, deadletter_key, deadletter_value
from orchestrator.contracts.interactions import ProviderInteraction, ProviderOutcome
from orchestrator.control.identity import SentMessage
from orchestrator.control.publisher import EventPublisher
from orchestrator.engine.events import Event
from orchestrator.infra.names import TopicNames
from orchestrator.infra.producer import idempotent_producer
from orchestrator.infra.reach import start_kafka_client
from orchestrator.infra.settings import Settings
from orchestrator.timefmt import format_instant

__all__ = [
    "MESSAGE_BOUNCED",
    "MESSAGE_FAILED",
    "MESSAGE_SENT",
    "ReceiptSink",
    "bounce_event",
    "late_bounce_event",
    "provider_record",
    "read_provider_record",
    "receipt_event",
]

MESSAGE_SENT = "message.sent"
MESSAGE_FAILED = "message.failed"
MESSAGE_BOUNCED = "message.bounced"


def receipt_event(message: OutboundMessage, outcome: Delivered | Permanent, at: float) -> Event:
    """`message.sent` (the provider accepted it) or `message.failed` (it never will).

    The event id is derived from the message id, so a receipt published twice (after a
    crash) is applied once by the journey workers.
    """
    name = MESSAGE_SENT if isinstance(outcome, Delivered) else MESSAGE_FAILED
    if isinstance(outcome, Delivered):
        return _receipt(name, message, at, {"provider_id": outcome.provider_id})
    return _receipt(name, message, at, {"error_code": outcome.code, "reason": outcome.reason})


def bounce_event(message: OutboundMessage, outcome: Permanent | Retry, at: float) -> Event | None:
    """`message.bounced` beside the `message.failed` of a bounce; None for other failures.

    `outcome` is the provider's last answer: a hard bounce, or the soft bounce after which
    retries ran out. It accompanies `message.failed`, not replaces it: the engine's fallback
    and suppression list act on `message.failed` alone, so they happen once whatever a
    journey waits for. `error_code` is the SMTP reply code (`550`; the failure says
    `smtp_550`).
    """
    if outcome.bounce is None:
        return None
    details = {
        "bounce": outcome.bounce,
        "error_code": outcome.code.removeprefix("smtp_"),
        "error": outcome.reason,
    }
    return _receipt(MESSAGE_BOUNCED, message, at, details)


def late_bounce_event(message: SentMessage, report: DeliveryReport, at: float) -> Event:
    """`message.bounced` (`late: true`) for a message the relay had accepted, from a DSN
    mailed back later (`connectors/bounces.py`); `report` is a hard or soft failure.

    Alone, without `message.failed`: the message was sent, and a bounce hours later falls
    back only while its journey still waits on it (docs/journeys.md). `error_code` is the SMTP
    reply code the diagnostic quotes (`550`), else the status; `status` the DSN's (`5.1.1`).
    The id is the send-time bounce's: a message bounces once.
    """
    details = {
        "bounce": report.verdict,
        "late": True,
        "error_code": report.reply_code or report.status,
        "status": report.status,
        "error": report.diagnostic,
    }
    return _receipt(MESSAGE_BOUNCED, message, at, details)


def _receipt(
    name: str, message: OutboundMessage | SentMessage, at: float, details: dict[str, Any]
) -> Event:
    """A receipt about `message`, its id derived from the message's (applied once)."""
    return Event(
        event_id=f"{name}:{message.message_id}",
        customer_id=message.customer_id,
        name=name,
        occurred_at=at,
        channel=message.channel,
        properties={
            "message_id": message.message_id,
            "journey": message.journey,
            "step": message.step,
            "instance_id": message.instance_id,
            "channel": message.channel,
            **details,
        },
    )


_PROVIDER_RECORD: TypeAdapter[ProviderInteraction] = TypeAdapter(ProviderInteraction)


def read_provider_record(data: Any) -> ProviderInteraction:
    """A provider record kept as JSON (in a delivery mark) back as its contract."""
    return validate(_PROVIDER_RECORD, data, "provider record")


def provider_record(
    message: OutboundMessage, provider: str, attempt: int, outcome: Outcome, at: float
) -> ProviderInteraction:
    """The interaction record of one provider request and its answer (one per attempt)."""
    record = ProviderInteraction(
        record_id=f"provider:{message.message_id}:{attempt}",
        at=format_instant(at),
        customer_id=message.customer_id,
        journey=message.journey,
        step=message.step,
        instance_id=message.instance_id,
        channel=message.channel,
        message_id=message.message_id,
        provider=provider,
        attempt=attempt,
        outcome=ProviderOutcome.RETRY,
    )
    if isinstance(outcome, Delivered):
        record.outcome, record.provider_id = ProviderOutcome.DELIVERED, outcome.provider_id
        record.reconciled = outcome.reconciled or None
    else:
        record.error_code, record.error = outcome.code, outcome.reason
        if isinstance(outcome, Permanent):
            record.outcome = ProviderOutcome.FAILED
        else:
            record.retry_after = outcome.after
    return record


class ReceiptSink:
    """Publishes receipts to `events` (through `EventPublisher`) and records to `interactions`
    and `deadletter` (an idempotent producer of its own); `async with` starts and stops both."""

    def __init__(self, settings: Settings) -> None:
        self.topics = TopicNames(settings.topic_prefix)
        self.bootstrap = settings.kafka_bootstrap
        self.events = EventPublisher(settings)
        self.producer = idempotent_producer(settings.kafka_bootstrap)

    async def __aenter__(self) -> ReceiptSink:
        await self.events.__aenter__()
        try:
            await start_kafka_client(self.producer.start, self.producer.stop, self.bootstrap)
        except BaseException:
            await self.events.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.producer.stop()
        finally:
            await self.events.__aexit__(None, None, None)

    async def send(self, events: list[Event], records: list[ProviderInteraction]) -> None:
        """Publish and wait until the broker has every one."""
        pending = [
            await self.producer.send(
                self.topics.interactions, record.to_json(), key=record.customer_id.encode()
            )
            for record in records
        ]
        await self.events.publish(events)
        for future in pending:
            await future
        await self.events.flush()

    async def deadletter(self, letter: DeadLetter) -> None:
        """Keep an unusable `outbound` record, with the reason, on `deadletter`."""
        future = await self.producer.send(
            self.topics.deadletter, deadletter_value(letter), key=deadletter_key(letter)
        )
        await future
