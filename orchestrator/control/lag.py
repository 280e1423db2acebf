"""How far a consumer group is behind, and how many timers are overdue, per partition.

Operators watch both: lag says events wait to be applied, overdue timers say the timer pump
of a partition is not keeping up (or no worker owns it).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from redis.exceptions import RedisError

from orchestrator.infra.clock import ScaledClock
from orchestrator.infra.names import RedisKeys, TopicNames
from orchestrator.infra.reach import REDIS_CONNECT_SECONDS, redis_failure, start_kafka_client
from orchestrator.infra.redisclient import connect_redis
from orchestrator.infra.settings import Settings
from orchestrator.infra.topics import kafka_admin, partitions_of

__all__ = ["LagReport", "PartitionLag", "group_lag"]


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """One partition: the group's committed offset (None: never committed), end, lag."""

    topic: str
    partition: int
    committed: int | None
    end: int
    lag: int
    overdue_timers: int | None  # `events` partitions only, when Redis answered


@dataclass(slots=True)
class LagReport:
    """Every partition the group reads, with totals; `redis_error` if timers are unknown."""

    group: str
    partitions: list[PartitionLag] = field(default_factory=list)
    redis_error: str | None = None

    @property
    def total_lag(self) -> int:
        """Records not yet committed, over all partitions."""
        return sum(p.lag for p in self.partitions)

    @property
    def total_overdue(self) -> int | None:
        """Overdue timers over all `events` partitions (None when Redis did not answer)."""
        counts = [p.overdue_timers for p in self.partitions if p.overdue_timers is not None]
        return None if self.redis_error is not None else sum(counts)

    def as_json(self) -> dict[str, Any]:
        """The report as a JSON object (`orchestrator lag --json`)."""
        return {
            "group": self.group,
            "partitions": [
                {name: getattr(p, name) for name in PartitionLag.__slots__} for p in self.partitions
            ],
            "total_lag": self.total_lag,
            "total_overdue_timers": self.total_overdue,
            "redis_error": self.redis_error,
        }


async def group_lag(settings: Settings, group: str | None = None) -> LagReport:
    """The lag of `group` (default: the journey workers') on `events` and its other topics.

    Reads committed offsets through the admin API, so it never joins the group. A partition
    the group has never committed counts from its first retained offset, where a new
    member would start.
    """
    group = group or settings.group_id
    events = TopicNames(settings.topic_prefix).events
    async with kafka_admin(settings.kafka_bootstrap) as admin:
        committed = {
            tp: meta.offset
            for tp, meta in (await admin.list_consumer_group_offsets(group)).items()
            if meta.offset >= 0
        }
    tps = {TopicPartition(events, p) for p in await partitions_of(settings.kafka_bootstrap, events)}
    tps.update(committed)
    ordered = sorted(tps, key=lambda tp: (tp.topic != events, tp.topic, tp.partition))
    starts, ends = await _offsets(settings, ordered)
    report = LagReport(group)
    overdue, report.redis_error = await _overdue_timers(
        settings, [tp.partition for tp in ordered if tp.topic == events]
    )
    for tp in ordered:
        done = committed.get(tp)
        report.partitions.append(
            PartitionLag(
                tp.topic,
                tp.partition,
                done,
                ends[tp],
                max(0, ends[tp] - (starts[tp] if done is None else done)),
                overdue.get(tp.partition) if tp.topic == events else None,
            )
        )
    return report


async def _offsets(
    settings: Settings, tps: list[TopicPartition]
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """First retained and end offsets of each partition."""
    if not tps:
        return {}, {}
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await start_kafka_client(consumer.start, consumer.stop, settings.kafka_bootstrap)
    try:
        return await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
    finally:
        await consumer.stop()


async def _overdue_timers(
    settings: Settings, partitions: list[int]
) -> tuple[dict[int, int], str | None]:
    """Timers due before now per `events` partition, or why Redis could not say.

    Lag is worth showing without Redis, so a Redis failure is reported, not raised.
    """
    keys = RedisKeys(settings.redis_prefix)
    events = TopicNames(settings.topic_prefix).events
    now = ScaledClock(settings.clock_speed, settings.clock_origin).now()
    client = connect_redis(settings)
    try:
        async with asyncio.timeout(REDIS_CONNECT_SECONDS):
            counts = [
                await client.zcount(keys.timers(events, p), "-inf", f"({now}") for p in partitions
            ]
    except (RedisError, OSError, TimeoutError) as exc:
        return {}, str(redis_failure(settings.redis_url, exc))
    finally:
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            await client.aclose()
    return dict(zip(partitions, counts, strict=True)), None
