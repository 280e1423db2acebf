"""Interaction records the API and CLI write besides the deploy log's: key changes, data reads.

Built in one place so switching to the typed `contracts/` models is a change here only.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiokafka import AIOKafkaProducer

from orchestrator import jsonwire
from orchestrator.infra.names import TopicNames
from orchestrator.infra.reach import start_kafka_client
from orchestrator.infra.settings import Settings

__all__ = ["data_access_record", "operator_record", "record_key", "send_records"]


def operator_record(action: str, at: str, operator: str, **details: Any) -> dict[str, Any]:
    """An `operator` interaction (e.g. `key.create`), shaped like the deploy actions' ones."""
    return {
        "record_id": f"op:{uuid.uuid4().hex}",
        "type": "operator",
        "action": action,
        "at": at,
        "operator": operator,
        **details,
    }


def data_access_record(customer_id: str, at: str, reader: str, fields: list[str]) -> dict[str, Any]:
    """A `data_access` interaction: who read which parts of a customer's data."""
    return {
        "record_id": f"access:{uuid.uuid4().hex}",
        "type": "data_access",
        "at": at,
        "customer_id": customer_id,
        "operator": reader,
        "fields": fields,
    }


def record_key(record: dict[str, Any]) -> bytes:
    """The partition key: the customer for data reads, the key id for key changes."""
    if "customer_id" in record:
        return str(record["customer_id"]).encode()
    return f"key:{record.get('key_id', record['record_id'])}".encode()


async def send_records(
    settings: Settings, records: list[dict[str, Any]], producer: AIOKafkaProducer | None = None
) -> None:
    """Append records to `interactions` and wait for the broker.

    With `producer` (the API's long-lived one) it is reused; otherwise one is started for
    this call (the CLI).
    """
    topic = TopicNames(settings.topic_prefix).interactions
    own = producer is None
    if producer is None:
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True, acks="all"
        )
        await start_kafka_client(producer.start, producer.stop, settings.kafka_bootstrap)
    try:
        for record in records:
            await producer.send_and_wait(topic, jsonwire.dumps(record), key=record_key(record))
    finally:
        if own:
            await producer.stop()
