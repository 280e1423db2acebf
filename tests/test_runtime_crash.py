"""Crash safety: a worker killed at any point loses nothing and sends nothing twice."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from orchestrator.engine.actions import Sent
from orchestrator.engine.catalog import catalog_of
from orchestrator.engine.events import Event
from orchestrator.engine.state import CustomerState
from orchestrator.infra.deploylog import CatalogFollower
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.settings import Settings
from orchestrator.journey.library import load_journeys
from orchestrator.runtime.context import WorkerContext
from orchestrator.runtime.processor import BatchProcessor, InboundRecord
from orchestrator.runtime.store import CustomerStore
from orchestrator.simulate import Simulator
from tests.runtime_harness import (
    WorkerProcess,
    isolated_settings,
    load_customers,
    no_pending_timers,
    pending_timers,
    prepare,
    publish,
    read_all,
    reader,
    redis_client,
    running_worker,
    topic_size,
    wait_all_consumed,
    wait_until,
)
from tests.runtime_scenario import (
    JOURNEYS,
    deploy_scenario,
    runtime_outcomes,
    scenario_events,
    simulated_outcomes,
)


def _simulate(events: list[Event]) -> tuple[dict[str, Sent], dict[str, CustomerState]]:
    """The sends (by message_id) and final customer states the simulator predicts."""
    simulator = Simulator(catalog_of(load_journeys([JOURNEYS])))
    sends = {a.message_id: a for a in simulator.run(events) if isinstance(a, Sent)}
    return sends, simulator.states


def _send_view(customer: str, step: str, channel: str, content: dict[str, Any]) -> tuple[Any, ...]:
    return (customer, step, channel, tuple(sorted(content.items())))


def _distinct(messages: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    """First record per id; fails if two records with one id differ (a dedupe key must be safe)."""
    first: dict[str, dict[str, Any]] = {}
    for message in messages:
        seen = first.setdefault(message[key], message)
        # Redelivery re-produces the outbox written before the crash: the very same record.
        assert seen == message, (seen, message)
    return first


async def _assert_states_kept(
    settings: Settings, events: list[Event], predicted: dict[str, CustomerState]
) -> None:
    customers = sorted({e.customer_id for e in events})
    stored = await load_customers(settings, customers)
    applied_ids: dict[str, set[str]] = {}
    for event in events:
        applied_ids.setdefault(event.customer_id, set()).add(event.event_id)
    for customer in customers:
        entry, expected = stored[customer], predicted[customer]
        assert entry.outbox is None, f"{customer}: outbox left behind"
        state = entry.state
        assert applied_ids[customer] <= set(state.applied), f"{customer}: events not applied"
        # A timer can come due while no worker runs and fire after the event that cancelled
        # it was applied: the firing is a no-op, but it is remembered as applied.
        extra = set(state.applied) - set(expected.applied)
        assert set(expected.applied) <= set(state.applied), customer
        assert all(event_id.startswith("timer:") for event_id in extra), (customer, extra)
        assert state.profile == expected.profile, customer
        assert state.consent == expected.consent, customer
        # Entry times went through the wire format, which keeps milliseconds.
        assert state.entries.keys() == expected.entries.keys(), customer
        for journey, (count, at) in state.entries.items():
            assert count == expected.entries[journey][0], customer
            assert abs(at - expected.entries[journey][1]) < 0.001, customer
        assert state.instances == expected.instances == {}, customer


@pytest.mark.parametrize("feed", ["faust", "aiokafka"])
async def test_kill_9_mid_stream_then_another_worker_delivers_everything_once(
    infrastructure: Settings, tmp_path: Path, feed: str
) -> None:
    settings = isolated_settings(infrastructure, batch_max=20, feed=feed)
    topics = await prepare(settings)
    await deploy_scenario(settings)
    events = scenario_events(300)
    customers = sorted({e.customer_id for e in events})
    first_half = {c for c in customers if int(c.rsplit("-", 1)[1]) < 150}
    sends, states = _simulate(events)
    expected_outcomes = simulated_outcomes(events)
    timed = {m for m, s in sends.items() if s.step in {"nudge", "follow_up"}}
    assert len(sends) > 400 and len(timed) > 100

    workers: list[WorkerProcess] = []
    try:
        async with (
            reader(settings, topics.outbound) as outbound,
            reader(settings, topics.interactions) as log,
        ):
            workers.append(WorkerProcess(settings, tmp_path / "worker-a.log"))
            await publish(settings, [e for e in events if e.customer_id in first_half])
            at_kill = await outbound.until(lambda ms: len(ms) >= 1)
            workers[0].kill()
            seen_before = {m["message_id"] for m in at_kill}
            assert 0 < len(seen_before) < len(sends)
            # The rest of the stream arrives while no worker runs.
            await publish(settings, [e for e in events if e.customer_id not in first_half])

            workers.append(WorkerProcess(settings, tmp_path / "worker-b.log"))
            messages = await outbound.until(
                lambda ms: {m["message_id"] for m in ms} >= set(sends), timeout=90
            )
            await wait_all_consumed(settings)
            await wait_until(lambda: no_pending_timers(settings), "every timer fired", timeout=30)
            await wait_all_consumed(settings)
            records = await read_all(log, settings)
            messages = await read_all(outbound, settings)
        workers[1].terminate()

        distinct = _distinct(messages, "message_id")
        assert set(distinct) == set(sends), "message ids differ from the simulator's"
        assert Counter(
            _send_view(m["customer_id"], m["step"], m["channel"], m["content"])
            for m in distinct.values()
        ) == Counter(
            _send_view(s.customer_id, s.step, s.channel, s.content) for s in sends.values()
        )
        assert timed <= set(distinct), "sends after a wait are missing"
        outcomes = runtime_outcomes(list(_distinct(records, "record_id").values()))
        assert outcomes == expected_outcomes
        await _assert_states_kept(settings, events, states)
        print(
            f"{len(seen_before)} messages out before the kill, {len(messages)} records for "
            f"{len(distinct)} distinct messages in the end"
        )
    finally:
        for worker in workers:
            if worker.process.poll() is None:
                worker.kill()
        for worker in workers:
            print(f"===== {worker.log_path.name}\n{worker.log()}")


class _CrashBeforeProduce:
    """A producer that dies on its first send: the crash between steps 4 and 5."""

    def __init__(self, inner: AIOKafkaProducer) -> None:
        self.inner = inner
        self.calls = 0

    def _crash_first(self) -> None:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("simulated crash after the state and outbox were written")

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        *,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]:
        self._crash_first()
        future: asyncio.Future[Any] = await self.inner.send(
            topic, value=value, key=key, partition=partition, headers=headers
        )
        return future

    def create_batch(self) -> Any:
        return self.inner.create_batch()

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[Any]:
        self._crash_first()
        future: asyncio.Future[Any] = await self.inner.send_batch(batch, topic, partition=partition)
        return future

    async def partitions_for(self, topic: str) -> set[int]:
        partitions: set[int] = await self.inner.partitions_for(topic)
        return partitions


async def test_outbox_left_by_a_crash_before_produce_is_delivered_once(
    infrastructure: Settings,
) -> None:
    settings = isolated_settings(infrastructure)
    topics = await prepare(settings)
    await deploy_scenario(settings)
    events = scenario_events(8)
    customers = sorted({e.customer_id for e in events})
    sends, states = _simulate(events)
    await publish(settings, events)
    async with reader(settings, topics.events) as events_log:
        await events_log.until(lambda rs: len(rs) >= len(events))
        records = [
            InboundRecord(m.topic, m.partition, m.offset, m.key, m.value) for m in events_log.raw
        ]

    keys = RedisKeys(settings.redis_prefix)
    follower = CatalogFollower(settings.kafka_bootstrap, topics.journeys)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    async with redis_client(settings) as redis:
        await follower.start()
        await producer.start()
        try:
            context = WorkerContext.of(
                settings, producer=_CrashBeforeProduce(producer), redis=redis
            )
            processor = BatchProcessor(
                context, store=CustomerStore(redis, keys), catalog=lambda: follower.catalog
            )
            with pytest.raises(ConnectionError, match="simulated crash"):
                await processor.process(records)
        finally:
            await producer.stop()
            await follower.stop()
        # Step 4 happened, step 5 did not: state and outbox are in Redis, nothing is out.
        for customer in customers:
            assert await redis.hexists(keys.customer(customer), "outbox"), customer
    stored = await load_customers(settings, customers)
    assert all(entry.outbox is not None and entry.outbox.records for entry in stored.values())
    assert await topic_size(settings, topics.outbound) == 0
    assert await topic_size(settings, topics.interactions) == 1  # only the deploy's record
    assert await pending_timers(settings) == []

    async with (
        running_worker(settings) as worker,
        reader(settings, topics.outbound) as outbound,
    ):
        await outbound.until(lambda ms: {m["message_id"] for m in ms} >= set(sends))
        await wait_until(lambda: no_pending_timers(settings), "every timer fired")
        await wait_all_consumed(settings)
        messages = await read_all(outbound, settings)
        duplicates = worker.totals.duplicates

    # Every event was already applied: the worker only carried out the leftover outboxes.
    assert duplicates == len(events)
    ids = Counter(m["message_id"] for m in messages)
    assert set(ids) == set(sends) and max(ids.values()) == 1, "a message went out twice"
    async with redis_client(settings) as redis:
        for customer in customers:
            assert not await redis.hexists(keys.customer(customer), "outbox"), customer
    await _assert_states_kept(settings, events, states)
