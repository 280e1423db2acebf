"""Reading a topic as an operator: by short name, from a chosen start, without joining a group.

Shared by `orchestrator topics dump`, `deadletters` and anything else that must look at
records as they are on the broker. Values are decoded safely: whatever bytes a producer
wrote, the caller gets something printable, never an exception.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from orchestrator import jsonwire
from orchestrator.errors import ConfigurationError
from orchestrator.infra.names import TopicNames
from orchestrator.infra.reach import start_kafka_client
from orchestrator.infra.settings import Settings
from orchestrator.infra.topics import kafka_admin, partitions_of
from orchestrator.timefmt import format_instant

__all__ = [
    "SHORT_NAMES",
    "Start",
    "TopicRecord",
    "decode_bytes",
    "read_topic",
    "resolve_topic",
]

SHORT_NAMES = ("events", "outbound", "interactions", "deadletter", "journeys")
# How long one fetch waits for records; only bounds how often `follow` looks again.
_POLL_MS = 500


@dataclass(frozen=True, slots=True)
class Start:
    """Where reading starts in each partition: the beginning, the end, or `last` before it."""

    beginning: bool = True
    last: int | None = None


@dataclass(frozen=True, slots=True)
class TopicRecord:
    """One record as read, with its value decoded for display (`decode_bytes`)."""

    topic: str
    partition: int
    offset: int
    timestamp: str | None
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def as_json(self) -> dict[str, Any]:
        """The record as a JSON object: position, time, key and value decoded safely."""
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": self.timestamp,
            "key": decode_bytes(self.key, as_json=False),
            "value": decode_bytes(self.value),
        }


def decode_bytes(raw: bytes | None, *, as_json: bool = True) -> Any:
    """`raw` as something any JSON printer takes: parsed JSON, else text, else base64.

    Text that is not JSON comes back as `{"text": ...}` and non-UTF-8 bytes as
    `{"b64": ...}`, so a reader can tell them from a JSON string value.
    """
    if raw is None:
        return None
    if as_json:
        try:
            return jsonwire.loads(raw)
        except jsonwire.JSONDecodeError:
            pass
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(raw).decode()}
    return {"text": text} if as_json else text


async def resolve_topic(settings: Settings, name: str) -> str:
    """The full topic name for `name` (a short name or a full one); it must exist."""
    names = TopicNames(settings.topic_prefix)
    topic = getattr(names, name) if name in SHORT_NAMES else name
    async with kafka_admin(settings.kafka_bootstrap) as admin:
        exists = topic in await admin.list_topics()
    if not exists:
        raise ConfigurationError(
            f"topic {topic} does not exist on Kafka at {settings.kafka_bootstrap}: name one of "
            f"{', '.join(SHORT_NAMES)} (under ORCHESTRATOR_TOPIC_PREFIX, now "
            f"{settings.topic_prefix!r}) or a full topic name; `orchestrator topics create` "
            "creates this deployment's topics"
        )
    return topic


async def read_topic(
    settings: Settings,
    topic: str,
    *,
    start: Start | None = None,
    partition: int | None = None,
    follow: bool = False,
) -> AsyncGenerator[TopicRecord, None]:
    """The records of `topic` from `start` up to its end offsets now (or forever if `follow`).

    The consumer has no group: it commits nothing and never joins the workers' group.
    """
    partitions = await partitions_of(settings.kafka_bootstrap, topic)
    if partition is not None:
        if partition not in partitions:
            raise ConfigurationError(
                f"topic {topic} has no partition {partition}: it has {len(partitions)} "
                f"(0 to {len(partitions) - 1})"
            )
        partitions = [partition]
    tps = [TopicPartition(topic, p) for p in partitions]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=None, enable_auto_commit=False
    )
    await start_kafka_client(consumer.start, consumer.stop, settings.kafka_bootstrap)
    try:
        consumer.assign(tps)
        ends = await _seek(consumer, tps, start or Start())
        while follow or await _behind(consumer, ends):
            batches = await consumer.getmany(*tps, timeout_ms=_POLL_MS)
            for tp in sorted(batches, key=lambda tp: tp.partition):
                for message in batches[tp]:
                    yield _record(message)
    finally:
        await consumer.stop()


async def _seek(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], start: Start
) -> dict[TopicPartition, int]:
    """Place every partition at `start`; return the end offsets a bounded read stops at."""
    beginnings = await consumer.beginning_offsets(tps)
    ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
    for tp in tps:
        if start.last is not None:
            consumer.seek(tp, max(beginnings[tp], ends[tp] - start.last))
        elif start.beginning:
            consumer.seek(tp, beginnings[tp])
        else:
            consumer.seek(tp, ends[tp])
    return ends


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    # Positions, not the offsets of records seen: compaction and transaction markers leave
    # gaps, so the last record of a partition may sit below its end offset.
    return any([await consumer.position(tp) < end for tp, end in ends.items()])


def _record(message: ConsumerRecord[bytes, bytes]) -> TopicRecord:
    timestamp = message.timestamp
    return TopicRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp=format_instant(timestamp / 1000) if timestamp and timestamp > 0 else None,
        key=message.key,
        value=message.value,
        headers=tuple((name, value) for name, value in message.headers or ()),
    )
