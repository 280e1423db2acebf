"""Creating the runtime's topics with their partition counts and configs, idempotently."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from orchestrator.infra.names import TopicNames
from orchestrator.infra.reach import start_kafka_client
from orchestrator.infra.settings import Settings

__all__ = ["ensure_topics", "kafka_admin", "partitions_of", "topic_specs", "wait_for_leaders"]

log = logging.getLogger(__name__)

_WEEK_MS = str(7 * 24 * 3600 * 1000)


def topic_specs(settings: Settings) -> list[NewTopic]:
    """Every topic with its partitions and configs."""
    names = TopicNames(settings.topic_prefix)
    rf = settings.replication_factor
    parts = settings.partitions
    return [
        NewTopic(names.events, parts, rf, topic_configs={"retention.ms": _WEEK_MS}),
        NewTopic(names.outbound, parts, rf, topic_configs={"retention.ms": _WEEK_MS}),
        # The interaction log is the system of record: keep it until the audit store archives it.
        NewTopic(names.interactions, parts, rf, topic_configs={"retention.ms": "-1"}),
        NewTopic(names.deadletter, parts, rf, topic_configs={"retention.ms": "-1"}),
        # One record per journey holds all its versions, so compaction keeps exactly what we need.
        NewTopic(
            names.journeys,
            1,
            rf,
            topic_configs={
                "cleanup.policy": "compact",
                "min.compaction.lag.ms": "0",
                "max.message.bytes": str(16 * 1024 * 1024),
            },
        ),
    ]


@contextlib.asynccontextmanager
async def kafka_admin(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client for `bootstrap`, closed when the block ends.

    Raises `DependencyUnavailableError` when no broker answers within `KAFKA_CONNECT_SECONDS`.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await start_kafka_client(admin.start, admin.close, bootstrap)
    try:
        yield admin
    finally:
        await admin.close()


async def ensure_topics(settings: Settings, leader_wait: float = 30.0) -> list[str]:
    """Create missing topics, then wait until each partition has a leader. Returns created names."""
    async with kafka_admin(settings.kafka_bootstrap) as admin:
        existing = set(await admin.list_topics())
        missing = [spec for spec in topic_specs(settings) if spec.name not in existing]
        if missing:
            await admin.create_topics(missing)
            log.info("created topics %s", ", ".join(t.name for t in missing))
    await _wait_for_leaders(settings, leader_wait)
    await _commit_start_offsets(settings, leader_wait)
    return [t.name for t in missing]


async def _committed_offsets(settings: Settings, wait: float) -> set[TopicPartition]:
    """Partitions the workers' group has committed offsets for.

    On a fresh broker the first group lookup creates `__consumer_offsets`, and until its
    partitions have leaders the coordinator lookup fails with a retriable error.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    async with kafka_admin(settings.kafka_bootstrap) as admin:
        while True:
            try:
                return set(await admin.list_consumer_group_offsets(settings.group_id))
            except KafkaError as exc:
                if not exc.retriable or loop.time() > deadline:
                    raise
                log.info("group coordinator not ready yet (%s), retrying", exc)
            await asyncio.sleep(0.2)


async def _commit_start_offsets(settings: Settings, wait: float) -> None:
    """Give the journey workers' group a committed offset on every `events` partition.

    faust seeks reassigned partitions back to their committed offsets, but leaves a partition
    with none at its fetch position: records fetched before a rebalance and dropped by it
    would be skipped. Committing the start offsets (what `earliest` would read) up front
    closes that gap. Only possible while the group has no members; later, the members'
    own commits cover it.
    """
    topic = TopicNames(settings.topic_prefix).events
    committed = await _committed_offsets(settings, wait)
    missing = [
        TopicPartition(topic, p)
        for p in await partitions_of(settings.kafka_bootstrap, topic)
        if TopicPartition(topic, p) not in committed
    ]
    if not missing:
        return
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.group_id,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        consumer.assign(missing)
        starts = await consumer.beginning_offsets(missing)
        await consumer.commit(dict(starts))
    except KafkaError as exc:  # the group is active: its members commit for themselves
        log.info("left %s's start offsets to its members: %s", settings.group_id, exc)
    finally:
        await consumer.stop()


async def partitions_of(bootstrap: str, topic: str) -> list[int]:
    """Partition numbers of a topic that have a leader (empty if it does not exist yet)."""
    async with kafka_admin(bootstrap) as admin:
        described = await admin.describe_topics([topic])
    return sorted(
        p["partition"]
        for t in described
        if t["error_code"] == 0
        for p in t["partitions"]
        if p["error_code"] == 0 and p["leader"] >= 0
    )


async def _wait_for_leaders(settings: Settings, leader_wait: float) -> None:
    await wait_for_leaders(settings.kafka_bootstrap, topic_specs(settings), leader_wait)


async def wait_for_leaders(bootstrap: str, specs: list[NewTopic], leader_wait: float) -> None:
    """Wait until every partition of the topics `specs` describe has a leader."""
    # Right after creation, metadata may list no partitions yet and sends hit NotLeader.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + leader_wait
    for spec in specs:
        while len(await partitions_of(bootstrap, spec.name)) < spec.num_partitions:
            if loop.time() > deadline:
                raise TimeoutError(
                    f"topic {spec.name} has no leaders after {leader_wait}s: check the broker log"
                )
            await asyncio.sleep(0.1)
