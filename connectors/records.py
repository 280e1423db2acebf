"""What connectors write to Kafka: receipts as events, provider outcomes as interaction records."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaProducer

from connectors.base import Delivered, OutboundMessage, Outcome, Permanent
from orchestrator import jsonwire
from orchestrator.contracts.codec import DeadLetter, deadletter_key, deadletter_value
from orchestrator.control.publisher import EventPublisher
from orchestrator.engine.events import Event
from orchestrator.infra.names import TopicNames
from orchestrator.infra.reach import start_kafka_client
from orchestrator.infra.settings import Settings
from orchestrator.timefmt import format_instant

__all__ = ["MESSAGE_FAILED", "MESSAGE_SENT", "ReceiptSink", "provider_record", "receipt_event"]

MESSAGE_SENT = "message.sent"
MESSAGE_FAILED = "message.failed"


def receipt_event(message: OutboundMessage, outcome: Delivered | Permanent, at: float) -> Event:
    """`message.sent` (the provider accepted it) or `message.failed` (it never will).

    The event id is derived from the message id, so a receipt published twice (after a
    crash) is applied once by the journey workers.
    """
    name = MESSAGE_SENT if isinstance(outcome, Delivered) else MESSAGE_FAILED
    properties: dict[str, Any] = {
        "message_id": message.message_id,
        "journey": message.journey,
        "step": message.step,
        "instance_id": message.raw.get("instance_id"),
        "channel": message.channel,
    }
    if isinstance(outcome, Delivered):
        properties["provider_id"] = outcome.provider_id
    else:
        properties.update(error_code=outcome.code, reason=outcome.reason)
    return Event(
        event_id=f"{name}:{message.message_id}",
        customer_id=message.customer_id,
        name=name,
        occurred_at=at,
        channel=message.channel,
        properties=properties,
    )


def provider_record(
    message: OutboundMessage, provider: str, attempt: int, outcome: Outcome, at: float
) -> dict[str, Any]:
    """The interaction record of one provider request and its answer (one per attempt).

    Kept in this one function: the typed interaction records in `contracts/` will replace
    this dict when they land.
    """
    record: dict[str, Any] = {
        "record_id": f"provider:{message.message_id}:{attempt}",
        "type": "provider",
        "at": format_instant(at),
        "customer_id": message.customer_id,
        "journey": message.journey,
        "step": message.step,
        "instance_id": message.raw.get("instance_id"),
        "channel": message.channel,
        "message_id": message.message_id,
        "provider": provider,
        "attempt": attempt,
    }
    if isinstance(outcome, Delivered):
        record.update(outcome="delivered", provider_id=outcome.provider_id)
    elif isinstance(outcome, Permanent):
        record.update(outcome="failed", error_code=outcome.code, error=outcome.reason)
    else:
        record.update(
            outcome="retry",
            error_code=outcome.code,
            error=outcome.reason,
            retry_after=outcome.after,
        )
    return record


class ReceiptSink:
    """Publishes receipts to `events` (through `EventPublisher`) and records to `interactions`
    and `deadletter` (an idempotent producer of its own); `async with` starts and stops both."""

    def __init__(self, settings: Settings) -> None:
        self.topics = TopicNames(settings.topic_prefix)
        self.bootstrap = settings.kafka_bootstrap
        self.events = EventPublisher(settings)
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
        )

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

    async def send(self, events: list[Event], records: list[dict[str, Any]]) -> None:
        """Publish and wait until the broker has every one."""
        pending = [
            await self.producer.send(
                self.topics.interactions,
                jsonwire.dumps(record),
                key=str(record["customer_id"]).encode(),
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
