"""End-to-end measurements on the real local Kafka and Redis, used by `bench/run.py`.

- `engine_rate`: one journey worker of the default deployment applies a pre-published
  backlog; events/s from its group's committed offsets, sampled while it runs.
- `baseline_rate`: the floor any Kafka → Redis → Kafka consumer pays, on the same topic and
  data: an aiokafka consumer, orjson decode, one pipelined Redis write per batch, one
  produced message per event, a commit per batch.
- `latency_at`: publish → `outbound` in Kafka at a fixed offered load, with the worker of
  `engine_rate` still running.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from orchestrator import jsonwire
from orchestrator.control.operations import JourneyOperations
from orchestrator.control.publisher import EventPublisher
from orchestrator.dev.demo.population import Population
from orchestrator.engine.events import Event
from orchestrator.infra.names import TopicNames
from orchestrator.infra.producer import idempotent_producer
from orchestrator.infra.redisclient import connect_redis
from orchestrator.infra.settings import Settings
from orchestrator.infra.topics import ensure_topics, kafka_admin
from orchestrator.journey.library import read_sources
from orchestrator.runtime.worker import JourneyWorker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.runtime_harness import WorkerProcess, group_state, wait_until

__all__ = ["Samples", "backlog", "baseline_rate", "latency_at", "running_engine", "worker_process"]

SAMPLE_SECONDS = 0.25


@dataclass
class Samples:
    """(seconds since the run started, events committed) for one consumer group."""

    points: list[tuple[float, int]] = field(default_factory=list)

    def rate(self) -> float:
        """Events/s from the first commit to the last: start-up and joining are not counted."""
        moving = [p for p in self.points if p[1] > 0]
        first = moving[0]
        last = next(p for p in moving if p[1] == moving[-1][1])
        if last[0] <= first[0]:  # all in one sample: bound it by the sampling period
            return last[1] / SAMPLE_SECONDS
        return (last[1] - first[1]) / (last[0] - first[0])


async def committed_total(settings: Settings, group: str) -> int:
    """Records of the `events` topic the group has committed."""
    topic = TopicNames(settings.topic_prefix).events
    async with kafka_admin(settings.kafka_bootstrap) as admin:
        committed = await admin.list_consumer_group_offsets(group)
    return sum(
        meta.offset for tp, meta in committed.items() if tp.topic == topic and meta.offset > 0
    )


async def follow(
    settings: Settings, group: str, total: int, origin: float, tick: Callable[[int], None]
) -> Samples:
    """Sample the group's committed offsets until it has committed `total` records."""
    samples = Samples()
    deadline = time.perf_counter() + 600
    while time.perf_counter() < deadline:
        done = await committed_total(settings, group)
        samples.points.append((time.perf_counter() - origin, done))
        tick(done)
        if done >= total:
            return samples
        await asyncio.sleep(SAMPLE_SECONDS)
    raise TimeoutError(f"group {group} committed {samples.points[-1][1]} of {total} records")


async def events_end(settings: Settings) -> int:
    """Records on the `events` topic so far (end offsets summed)."""
    topic = TopicNames(settings.topic_prefix).events
    probe = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await probe.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.partitions)]
        return sum((await probe.end_offsets(partitions)).values())
    finally:
        await probe.stop()


def _ignore(_: int) -> None:
    pass


async def backlog(settings: Settings, root_journeys: str, customers: int) -> int:
    """Create the topics, deploy the library and publish the population's last hour."""
    await ensure_topics(settings)
    sources, _ = read_sources([root_journeys])
    await JourneyOperations(settings, "bench").deploy(sources)
    now = time.time()
    events = [
        e
        for e in Population(customers, now - 3600, spread_days=0.04).events()
        if e.occurred_at <= now
    ]
    async with EventPublisher(settings) as publisher:
        await publisher.publish(events)
    return len(events)


@contextlib.asynccontextmanager
async def worker_process(settings: Settings) -> AsyncIterator[None]:
    """`orchestrator worker` in its own process, as deployed, once it has joined its group:
    this process's publisher and readers then do not share its event loop."""
    with tempfile.TemporaryDirectory(prefix="orchestrator-bench-") as logs:
        process = WorkerProcess(settings, Path(logs) / "worker.log")
        try:

            async def joined() -> bool:
                return await group_state(settings) == ("Stable", 1)

            await wait_until(joined, "the worker joined its group", timeout=120)
            yield
        finally:
            process.terminate()


@contextlib.asynccontextmanager
async def running_engine(settings: Settings) -> AsyncIterator[JourneyWorker]:
    """One journey worker running in this process for the duration of the block."""
    async with JourneyWorker(settings) as worker:
        task = asyncio.create_task(worker.run())
        try:
            yield worker
        finally:
            worker.stop()
            await task


async def baseline_rate(
    settings: Settings, total: int, origin: float, tick: Callable[[int], None]
) -> Samples:
    """The bare consumer over the whole `events` topic; sampled like the engine."""
    topics = TopicNames(settings.topic_prefix)
    group = f"{settings.group_id}-baseline"
    consumer = AIOKafkaConsumer(
        topics.events,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=settings.batch_max,
    )
    producer = idempotent_producer(settings.kafka_bootstrap, linger_ms=5)
    redis = connect_redis(settings)
    stopping = asyncio.Event()

    async def consume() -> None:
        while not stopping.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=settings.batch_max)
            if not batches:
                continue
            async with redis.pipeline(transaction=False) as pipe:
                sends = []
                for messages in batches.values():
                    for message in messages:
                        event = jsonwire.loads(message.value or b"{}")
                        customer = str(event["customer_id"])
                        pipe.set(
                            f"{settings.redis_prefix}baseline:{customer}", message.value or b""
                        )
                        sends.append(
                            await producer.send(topics.outbound, message.value, key=message.key)
                        )
                await pipe.execute()
            await asyncio.gather(*sends)
            await consumer.commit({tp: ms[-1].offset + 1 for tp, ms in batches.items()})

    await consumer.start()
    await producer.start()
    try:
        task = asyncio.create_task(consume())
        samples = await follow(settings, group, total, origin, tick)
        stopping.set()
        await task
    finally:
        await consumer.stop()
        await producer.stop()
        await redis.aclose()
    return samples


@dataclass
class Latencies:
    """Publish → outbound seconds, each with the second of the run it was published at."""

    points: list[tuple[float, float]] = field(default_factory=list)

    def sorted(self) -> list[float]:
        """The latencies alone, ascending."""
        return sorted(latency for _, latency in self.points)


def fresh_events(count: int, run: str) -> list[Event]:
    """`count` events of a population unseen so far, in time order, none in the future."""
    now = time.time()
    found: list[Event] = []
    size = max(100, count // 3)
    while len(found) < count:
        found = [
            e
            for e in Population(size, now - 3600, spread_days=0.04, run=run).events()
            if e.occurred_at <= now
        ]
        size *= 2
    return found[:count]


async def latency_at(
    settings: Settings,
    rate: float,
    seconds: float,
    origin: float,
    tick: Callable[[float], None],
) -> Latencies:
    """Offer `rate` events/s for `seconds` to the running worker; time each event that
    causes an outbound message from its publish to that message's broker timestamp.

    The measure ends when the worker's group has committed everything on `events`."""
    topics = TopicNames(settings.topic_prefix)
    events = fresh_events(int(rate * seconds), f"lat{int(time.time())}")
    sent: dict[str, float] = {}  # event id: wall time published
    sent_at: dict[str, float] = {}  # event id: seconds since the run started
    outbound = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=None, auto_offset_reset="latest"
    )
    await outbound.start()
    partitions = [TopicPartition(topics.outbound, p) for p in range(settings.partitions)]
    outbound.assign(partitions)
    await outbound.seek_to_end()
    for tp in partitions:
        await outbound.position(tp)  # resolve "latest" now, before anything is published
    arrived: list[tuple[str, float]] = []
    stopping = asyncio.Event()

    async def read() -> None:
        while not stopping.is_set():
            for messages in (await outbound.getmany(timeout_ms=100)).values():
                for message in messages:
                    value = jsonwire.loads(message.value or b"{}")
                    arrived.append((str(value.get("caused_by")), message.timestamp / 1000))

    reading = asyncio.create_task(read())
    try:
        async with EventPublisher(settings, linger_ms=1) as publisher:
            step = 0.02
            started = time.time()
            published = 0
            while published < len(events):
                due = min(len(events), int((time.time() - started) * rate) + 1)
                chunk = events[published:due]
                at, run_at = time.time(), time.perf_counter() - origin
                for event in chunk:
                    sent[event.event_id] = at
                    sent_at[event.event_id] = run_at
                await publisher.publish(chunk)
                published = due
                tick(time.time() - started)
                await asyncio.sleep(max(0.0, started + published / rate - time.time(), step / 4))
            await publisher.flush()
        await follow(settings, settings.group_id, await events_end(settings), origin, _ignore)
        await asyncio.sleep(0.5)  # the reader's next fetch, for the last outbound messages
    finally:
        stopping.set()
        await reading
        await outbound.stop()
    result = Latencies()
    for caused_by, at in arrived:
        if caused_by in sent:
            result.points.append((sent_at[caused_by], at - sent[caused_by]))
    return result
