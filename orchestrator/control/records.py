"""Interaction records the API and CLI write besides the deploy log's: key changes, data
reads, erasures.

Typed by `contracts.interactions` (`KeyInteraction`, `DataAccessInteraction`,
`ErasureInteraction`), like every record of the topic.
"""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaProducer

from orchestrator.contracts.interactions import (
    DataAccessInteraction,
    ErasureInteraction,
    KeyAction,
    KeyInteraction,
)
from orchestrator.infra.names import TopicNames
from orchestrator.infra.producer import idempotent_producer
from orchestrator.infra.reach import start_kafka_client
from orchestrator.infra.settings import Settings

__all__ = ["ApiRecord", "data_access_record", "erasure_record", "key_record", "send_records"]

ApiRecord = KeyInteraction | DataAccessInteraction | ErasureInteraction


def key_record(
    action: KeyAction, at: str, operator: str, *, key_id: str, key_name: str, role: str
) -> KeyInteraction:
    """An `operator` interaction for a key created or revoked (never its secret)."""
    return KeyInteraction(
        record_id=f"op:{uuid.uuid4().hex}",
        action=action,
        at=at,
        operator=operator,
        key_id=key_id,
        key_name=key_name,
        role=role,
    )


def data_access_record(
    customer_id: str, at: str, reader: str, fields: list[str]
) -> DataAccessInteraction:
    """A `data_access` interaction: who read which parts of a customer's data."""
    return DataAccessInteraction(
        record_id=f"access:{uuid.uuid4().hex}",
        at=at,
        customer_id=customer_id,
        operator=reader,
        fields=fields,
    )


def erasure_record(customer_id: str, at: str, operator: str) -> ErasureInteraction:
    """An `erasure` interaction: who erased which customer, when (no personal data)."""
    # A fresh id per run, like `audit_erasures`: an erasure run twice is recorded twice.
    return ErasureInteraction(
        record_id=f"erase:{uuid.uuid4().hex}", at=at, customer_id=customer_id, operator=operator
    )


def _key(record: ApiRecord) -> bytes:
    """The partition key: the customer for data reads and erasures, the key id for keys."""
    if isinstance(record, DataAccessInteraction | ErasureInteraction):
        return record.customer_id.encode()
    return f"key:{record.key_id}".encode()


async def send_records(
    settings: Settings, records: list[ApiRecord], producer: AIOKafkaProducer | None = None
) -> None:
    """Append records to `interactions` and wait for the broker.

    With `producer` (the API's long-lived one) it is reused; otherwise one is started for
    this call (the CLI).
    """
    topic = TopicNames(settings.topic_prefix).interactions
    own = producer is None
    if producer is None:
        producer = idempotent_producer(settings.kafka_bootstrap)
        await start_kafka_client(producer.start, producer.stop, settings.kafka_bootstrap)
    try:
        for record in records:
            await producer.send_and_wait(topic, record.to_json(), key=_key(record))
    finally:
        if own:
            await producer.stop()
