"""Helpers for tests against the real broker and Redis: isolated names, readers, workers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from orchestrator import jsonwire
from orchestrator.runtime.clock import Clock
from orchestrator.runtime.names import TopicNames
from orchestrator.runtime.settings import Settings
from orchestrator.runtime.topics import ensure_topics, partitions_of
from orchestrator.runtime.worker import JourneyWorker

WAIT_SECONDS = 60.0


def isolated_settings(base: Settings, **overrides: Any) -> Settings:
    """Settings with unique topic, group and Redis prefixes, so tests never see each other."""
    tag = uuid.uuid4().hex[:10]
    values: dict[str, Any] = {
        "kafka_bootstrap": base.kafka_bootstrap,
        "redis_url": base.redis_url,
        "topic_prefix": f"test.{tag}.",
        "redis_prefix": f"test:{tag}:",
        "group_id": f"test-{tag}",
        "partitions": 4,
        "timer_poll_ms": 50,
        "batch_wait_ms": 10,
        "session_timeout_ms": 6000,
    }
    values.update(overrides)
    return Settings(**values)


async def prepare(settings: Settings) -> TopicNames:
    """Create the isolated topics."""
    await ensure_topics(settings)
    return TopicNames(settings.topic_prefix)


class TopicReader:
    """Reads a whole topic from the beginning, accumulating decoded JSON values."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.topic = topic
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
                    self.values.append(jsonwire.loads(message.value))
        return self.values

    async def close(self) -> None:
        """Stop the consumer."""
        await self.consumer.stop()


@contextlib.asynccontextmanager
async def reader(settings: Settings, topic: str) -> AsyncIterator[TopicReader]:
    """A `TopicReader` that is closed afterwards."""
    topic_reader = TopicReader(settings, topic)
    try:
        yield topic_reader
    finally:
        await topic_reader.close()


async def wait_all_consumed(settings: Settings, timeout: float = WAIT_SECONDS) -> None:
    """Wait until the journey workers' group has committed every `events` record."""
    topic = TopicNames(settings.topic_prefix).events
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    probe = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await admin.start()
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
        await admin.close()


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


class WorkerProcess:
    """`orchestrator worker` in a subprocess, for crash tests (kill -9)."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        env = dict(os.environ)
        for name, value in settings.model_dump().items():
            env[f"ORCHESTRATOR_{name.upper()}"] = str(value)
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "worker", "--log-level", "info"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        """SIGKILL: no cleanup, no commit, exactly like a crash."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self._log.close()

    def terminate(self) -> None:
        """SIGTERM and wait for a clean exit."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()

    def log(self) -> str:
        """What the worker printed (for failure messages)."""
        return self.log_path.read_text(errors="replace")
