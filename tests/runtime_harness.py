"""Helpers for tests against the real broker and Redis: isolated names, readers, workers."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, TopicPartition

from orchestrator import jsonwire
from orchestrator.contracts.schemas import TOPIC_CONTRACTS, read_record
from orchestrator.control.publisher import EventPublisher
from orchestrator.engine.events import Event
from orchestrator.infra.clock import Clock, ScaledClock
from orchestrator.infra.names import RedisKeys, TopicNames
from orchestrator.infra.redisclient import RedisClient, connect_redis
from orchestrator.infra.settings import Settings
from orchestrator.infra.topics import ensure_topics, kafka_admin, partitions_of
from orchestrator.journey.source import JourneySource, TemplateSource
from orchestrator.runtime.store import CustomerStore, StoredCustomer
from orchestrator.runtime.worker import JourneyWorker

WAIT_SECONDS = 60.0

# Every namespace of this test session starts with it, so the session can drop them all.
SESSION_TAG = uuid.uuid4().hex[:6]
SESSION_TOPIC_PREFIX = f"test.{SESSION_TAG}."
SESSION_REDIS_PATTERN = f"test:{SESSION_TAG}:*"


def isolated_settings(base: Settings, **overrides: Any) -> Settings:
    """Settings with unique topic, group and Redis prefixes, so tests never see each other."""
    tag = uuid.uuid4().hex[:10]
    values: dict[str, Any] = {
        "kafka_bootstrap": base.kafka_bootstrap,
        "redis_url": base.redis_url,
        "topic_prefix": f"{SESSION_TOPIC_PREFIX}{tag}.",
        "redis_prefix": f"test:{SESSION_TAG}:{tag}:",
        "group_id": f"test-{tag}",
        "partitions": 4,
        "timer_poll_ms": 50,
        "batch_wait_ms": 10,
        "session_timeout_ms": 6000,
        # Many workers share this host during tests: none serves /health unless asked to.
        "health_port": 0,
        "connector_metrics_port": 0,
    }
    values.update(overrides)
    return Settings(**values)


async def prepare(settings: Settings) -> TopicNames:
    """Create the isolated topics."""
    await ensure_topics(settings)
    return TopicNames(settings.topic_prefix)


class TopicReader:
    """Reads a whole topic from the beginning, accumulating decoded JSON values.

    Each value of one of the deployment's topics must match that topic's contract
    (`orchestrator/contracts/`): a record that does not fails the test that reads it.
    """

    def __init__(self, settings: Settings, topic: str) -> None:
        self.topic = topic
        name = topic.removeprefix(settings.topic_prefix)
        self.contract = name if name in TOPIC_CONTRACTS and name != topic else None
        self.bootstrap = settings.kafka_bootstrap
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, group_id=None
        )
        self.values: list[Any] = []
        self.raw: list[Any] = []
        self._started = False

    async def _start(self) -> None:
        if self._started:
            return
        await self.consumer.start()
        partitions = await partitions_of(self.bootstrap, self.topic)
        assigned = [TopicPartition(self.topic, p) for p in partitions]
        self.consumer.assign(assigned)
        await self.consumer.seek_to_beginning(*assigned)
        self._started = True

    async def until(
        self, done: Callable[[list[Any]], bool], timeout: float = WAIT_SECONDS
    ) -> list[Any]:
        """Read until `done(values)` holds; fail with what was seen if it never does."""
        await self._start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done(self.values):
            if loop.time() > deadline:
                raise AssertionError(
                    f"{self.topic}: condition not met in {timeout}s; saw {len(self.values)} "
                    f"records, last ones: {self.values[-5:]}"
                )
            batches = await self.consumer.getmany(timeout_ms=200)
            for messages in batches.values():
                for message in messages:
                    self.raw.append(message)
                    self.values.append(self.decode(message.value))
        return self.values

    def decode(self, value: bytes | None) -> Any:
        """How a record's value is kept in `values` (JSON; `RawTopicReader` keeps bytes)."""
        if value is None:
            return None
        if self.contract is not None:
            read_record(self.contract, value)
        return jsonwire.loads(value)

    async def close(self) -> None:
        """Stop the consumer."""
        await self.consumer.stop()


class RawTopicReader(TopicReader):
    """A `TopicReader` that keeps values as bytes (for topics that may hold garbage)."""

    def decode(self, value: bytes | None) -> Any:
        """The bytes as they are."""
        return value


@contextlib.asynccontextmanager
async def reader(settings: Settings, topic: str, raw: bool = False) -> AsyncIterator[TopicReader]:
    """A `TopicReader` (a `RawTopicReader` if `raw`) that is closed afterwards."""
    topic_reader = RawTopicReader(settings, topic) if raw else TopicReader(settings, topic)
    try:
        yield topic_reader
    finally:
        await topic_reader.close()


async def committed_offsets(settings: Settings) -> dict[tuple[str, int], int]:
    """The journey workers' group's committed offsets, by (topic, partition)."""
    async with kafka_admin(settings.kafka_bootstrap) as admin:
        committed = await admin.list_consumer_group_offsets(settings.group_id)
    return {(tp.topic, tp.partition): meta.offset for tp, meta in committed.items()}


async def group_state(settings: Settings) -> tuple[str, int]:
    """The journey workers' group's state ("Stable", "PreparingRebalance"...) and size."""
    async with kafka_admin(settings.kafka_bootstrap) as admin:
        [response] = await admin.describe_consumer_groups([settings.group_id])
    [group] = response.to_object()["groups"]
    return group["state"], len(group["members"])


async def wait_all_consumed(settings: Settings, timeout: float = WAIT_SECONDS) -> None:
    """Wait until the journey workers' group has committed every `events` record."""
    topic = TopicNames(settings.topic_prefix).events
    probe = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    async with kafka_admin(settings.kafka_bootstrap) as admin:
        await probe.start()
        try:
            partitions = [TopicPartition(topic, p) for p in range(settings.partitions)]
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while True:
                ends = await probe.end_offsets(partitions)
                committed = await admin.list_consumer_group_offsets(settings.group_id)
                behind = {
                    tp: end
                    for tp, end in ends.items()
                    if end > (committed[tp].offset if tp in committed else 0)
                }
                if not behind:
                    return
                if loop.time() > deadline:
                    raise AssertionError(f"events not all consumed after {timeout}s: {behind}")
                await asyncio.sleep(0.1)
        finally:
            await probe.stop()


@contextlib.asynccontextmanager
async def running_worker(
    settings: Settings, clock: Clock | None = None
) -> AsyncIterator[JourneyWorker]:
    """An in-process journey worker running in a task for the duration of the block."""
    worker = JourneyWorker(settings, clock)
    await worker.start()
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        try:
            await asyncio.wait_for(task, timeout=30)
        finally:
            await worker.close()


class OrchestratorProcess:
    """An `orchestrator` command in a subprocess, for crash tests (kill -9), logging to a file."""

    def __init__(self, settings: Settings, log_path: Path, *command: str) -> None:
        env = {**os.environ, **settings.as_environment()}
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", *command],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        """SIGKILL: no cleanup, no commit, exactly like a crash."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self._log.close()

    def terminate(self) -> int:
        """SIGTERM and wait for a clean exit (SIGKILL after 30 s); the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()
        return self.process.returncode

    def log(self) -> str:
        """What the process printed (for failure messages)."""
        return self.log_path.read_text(errors="replace")


class WorkerProcess(OrchestratorProcess):
    """`orchestrator worker` in a subprocess."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        super().__init__(settings, log_path, "worker", "--log-level", "info")


# --- Helpers for the runtime property tests (crash, scaling, timers, deploys, dead letters) ---


class OffsetClock(ScaledClock):
    """Real time shifted by `offset` seconds: a worker that lives in the future (or past).

    `move_to` shifts it while a worker uses it, so a test can place "now" just before an
    instant once the worker is up, whatever its start-up took.
    """

    __slots__ = ("offset",)
    offset: float

    def __init__(self, offset: float = 0.0) -> None:
        super().__init__()
        object.__setattr__(self, "offset", offset)

    def move_to(self, virtual_now: float) -> None:
        """Make `now()` return `virtual_now` at this instant (and move on in real time)."""
        object.__setattr__(self, "offset", virtual_now - time.time())

    def now(self) -> float:
        """Current epoch seconds plus the offset."""
        return time.time() + self.offset


def journey_source(
    text: str, templates: Mapping[str, str] | None = None, path: str = "journey.yaml"
) -> JourneySource:
    """An in-memory journey file with its templates (name -> YAML text)."""
    return JourneySource(
        path=path,
        text=text,
        templates={
            name: TemplateSource(f"templates/{name}.yaml", body)
            for name, body in (templates or {}).items()
        },
    )


def make_event(
    customer: str,
    name: str,
    properties: dict[str, Any] | None = None,
    at: float | None = None,
    event_id: str | None = None,
) -> Event:
    """An event with a fresh id (unless given), occurring now (unless given)."""
    return Event(
        event_id or f"{customer}:{name}:{uuid.uuid4().hex[:8]}",
        customer,
        name,
        time.time() if at is None else at,
        "web",
        properties or {},
    )


async def publish(settings: Settings, events: list[Event]) -> None:
    """Publish events and wait until the broker has them."""
    async with EventPublisher(settings) as publisher:
        await publisher.publish(events)


async def wait_until(
    condition: Callable[[], Awaitable[bool] | bool],
    what: str,
    timeout: float = WAIT_SECONDS,
    interval: float = 0.05,
) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"not reached in {timeout}s: {what}")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def redis_client(settings: Settings) -> AsyncIterator[RedisClient]:
    """A Redis client on the isolated settings' server, closed afterwards."""
    client = connect_redis(settings)
    try:
        yield client
    finally:
        await client.aclose()


async def load_customers(settings: Settings, customer_ids: list[str]) -> dict[str, StoredCustomer]:
    """What Redis holds for these customers (state and any leftover outbox)."""
    async with redis_client(settings) as client:
        return await CustomerStore(client, RedisKeys(settings.redis_prefix)).load(customer_ids)


async def pending_timers(settings: Settings) -> list[tuple[list[str], float]]:
    """Every timer in the partitions' sorted sets: ([customer, journey, instance, timer], due)."""
    keys = RedisKeys(settings.redis_prefix)
    events = TopicNames(settings.topic_prefix).events
    found: list[tuple[list[str], float]] = []
    async with redis_client(settings) as client:
        for partition in range(settings.partitions):
            members = cast(
                list[tuple[bytes, float]],
                await client.zrange(keys.timers(events, partition), 0, -1, withscores=True),
            )
            found.extend((jsonwire.loads(member), float(due)) for member, due in members)
    return found


def of_type(records: list[Any], kind: str, customer: str | None = None) -> list[dict[str, Any]]:
    """Interaction records of one type (and customer)."""
    return [
        r
        for r in records
        if isinstance(r, dict)
        and r.get("type") == kind
        and (customer is None or r.get("customer_id") == customer)
    ]


def inbound_seen(records: list[Any], event: Event) -> bool:
    """True once the interaction log holds the inbound record of `event`."""
    return any(
        isinstance(r, dict) and r.get("record_id") == f"in:{event.event_id}" for r in records
    )


async def topic_size(settings: Settings, topic: str, partitions: list[int] | None = None) -> int:
    """How many records a topic holds (sum of its partitions' end offsets), or only the
    `partitions` given (a topic whose records all start at offset 0)."""
    probe = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await probe.start()
    try:
        if partitions is None:
            partitions = await partitions_of(settings.kafka_bootstrap, topic)
        ends = await probe.end_offsets([TopicPartition(topic, p) for p in partitions])
        return sum(ends.values())
    finally:
        await probe.stop()


async def read_all(topic_reader: TopicReader, settings: Settings) -> list[Any]:
    """Everything the topic holds right now (read up to its current end offsets)."""
    size = await topic_size(settings, topic_reader.topic)
    return await topic_reader.until(lambda _: len(topic_reader.raw) >= size)


async def no_pending_timers(settings: Settings) -> bool:
    """True when no partition's sorted set holds a timer."""
    return not await pending_timers(settings)
