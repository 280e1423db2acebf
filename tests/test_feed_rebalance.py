"""A rebalance while a batch is processed: the aiokafka feed commits what it still owns and
goes on (raising on the partitions taken away stopped the worker when a second one joined);
a batch refused because another worker wrote its customers first is read again."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence, Set

from aiokafka import AIOKafkaConsumer, TopicPartition

from orchestrator.infra.settings import Settings
from orchestrator.runtime.feeds import AiokafkaFeed, Ownership
from orchestrator.runtime.processor import InboundRecord
from orchestrator.runtime.store import StaleStateError
from tests.runtime_harness import (
    WAIT_SECONDS,
    committed_offsets,
    isolated_settings,
    make_event,
    prepare,
    publish,
    wait_until,
)


async def test_a_partition_taken_away_mid_batch_does_not_stop_the_feed(
    infrastructure: Settings,
) -> None:
    settings = isolated_settings(infrastructure, feed="aiokafka")
    topics = await prepare(settings)
    events = [make_event(f"customer-{n}", "page.viewed") for n in range(40)]
    await publish(settings, events)

    first_batch: list[InboundRecord] = []
    first_batch_in, release, revoked = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def handle(records: Sequence[InboundRecord]) -> None:
        if not first_batch_in.is_set():
            first_batch.extend(records)
            first_batch_in.set()
            await release.wait()

    def on_revoked(partitions: Set[int]) -> None:
        if partitions:
            revoked.set()

    feed = AiokafkaFeed(settings, topics.events, handle, Ownership(lambda _: None, on_revoked))
    await feed.start()
    stopping = asyncio.Event()
    running = asyncio.create_task(feed.run(stopping))
    other = AIOKafkaConsumer(
        topics.events,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.group_id,
        enable_auto_commit=False,
        session_timeout_ms=settings.session_timeout_ms,
    )
    try:
        await asyncio.wait_for(first_batch_in.wait(), WAIT_SECONDS)
        # A second member joins while the first batch is still being processed.
        await other.start()
        await asyncio.wait_for(revoked.wait(), WAIT_SECONDS)
        await wait_until(lambda: bool(other.assignment()), "the second member owns partitions")
        taken = {tp.partition for tp in other.assignment()}
        in_batch = {record.partition for record in first_batch}
        assert in_batch & taken, "the first batch holds no partition the rebalance took"
        kept = in_batch - taken

        release.set()

        async def kept_committed() -> bool:
            committed = await committed_offsets(settings)
            ends = await other.end_offsets([TopicPartition(topics.events, p) for p in sorted(kept)])
            return all(
                committed.get((tp.topic, tp.partition), -1) == end for tp, end in ends.items()
            )

        await wait_until(kept_committed, "the kept partitions' offsets committed")
        assert not running.done(), "the feed stopped after the rebalance"
    finally:
        stopping.set()
        release.set()
        await other.stop()
        await asyncio.wait_for(running, WAIT_SECONDS)  # ends normally: raises nothing
        await feed.close()


async def test_a_batch_refused_as_stale_is_read_again_and_then_committed(
    infrastructure: Settings,
) -> None:
    settings = isolated_settings(infrastructure, feed="aiokafka")
    topics = await prepare(settings)
    await publish(settings, [make_event(f"customer-{n}", "page.viewed") for n in range(40)])
    batches: list[list[tuple[int, int]]] = []

    async def handle(records: Sequence[InboundRecord]) -> None:
        batches.append([(record.partition, record.offset) for record in records])
        if len(batches) == 1:
            raise StaleStateError([f"customer-{n}" for n in range(3)])

    feed = AiokafkaFeed(settings, topics.events, handle, Ownership(lambda _: None, lambda _: None))
    await feed.start()
    stopping = asyncio.Event()
    running = asyncio.create_task(feed.run(stopping))
    try:

        async def all_committed() -> bool:
            committed = await committed_offsets(settings)
            return sum(committed.values()) == 40

        await wait_until(all_committed, "every record committed")
        assert not running.done(), "the feed stopped on the stale batch"
    finally:
        stopping.set()
        await asyncio.wait_for(running, WAIT_SECONDS)
        await feed.close()
    refused, later = set(batches[0]), {pair for batch in batches[1:] for pair in batch}
    assert refused and refused <= later, "records of the refused batch were not read again"
