"""`orchestrator worker`: a journey worker in the consumer group of the `events` topic."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from redis.asyncio import Redis

from orchestrator.runtime.clock import Clock
from orchestrator.runtime.deploylog import CatalogFollower
from orchestrator.runtime.names import RedisKeys, TopicNames
from orchestrator.runtime.processor import BatchProcessor, BatchStats, InboundRecord
from orchestrator.runtime.settings import Settings
from orchestrator.runtime.store import CustomerStore
from orchestrator.runtime.timers import TimerPump

__all__ = ["JourneyWorker"]

log = logging.getLogger(__name__)


class _TimerOwnership(ConsumerRebalanceListener):  # type: ignore[misc]
    """Moves timer firing with partition ownership."""

    def __init__(self, pump: TimerPump, topic: str) -> None:
        self.pump = pump
        self.topic = topic

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self.pump.partitions.difference_update(
            tp.partition for tp in revoked if tp.topic == self.topic
        )

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.pump.partitions.update(tp.partition for tp in assigned if tp.topic == self.topic)
        log.info("owning partitions %s", sorted(self.pump.partitions))


class JourneyWorker:
    """Consumes `events` in batches, applies journeys, fires timers of owned partitions.

    Use `async with JourneyWorker(settings) as worker: await worker.run()`; `stop()` is
    idempotent and safe from a signal handler.
    """

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or Clock(settings.clock_speed, settings.clock_origin)
        self.topics = TopicNames(settings.topic_prefix)
        self.keys = RedisKeys(settings.redis_prefix)
        self.redis = Redis.from_url(settings.redis_url)
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            max_batch_size=262144,
        )
        self.follower = CatalogFollower(settings.kafka_bootstrap, self.topics.journeys)
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=settings.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=settings.batch_max,
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=max(300, settings.session_timeout_ms // 4),
        )
        self.pump = TimerPump(
            redis=self.redis,
            producer=self.producer,
            topics=self.topics,
            keys=self.keys,
            clock=self.clock,
            poll_seconds=settings.timer_poll_ms / 1000,
        )
        self.processor = BatchProcessor(
            store=CustomerStore(self.redis, self.keys),
            producer=self.producer,
            topics=self.topics,
            keys=self.keys,
            catalog=lambda: self.follower.catalog,
            now=self.clock.now,
        )
        self.totals = BatchStats()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._started = False
        self._failure: BaseException | None = None

    async def __aenter__(self) -> JourneyWorker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Connect, load the catalog to the end of the deploy log, join the group."""
        await self.redis.ping()
        await self.producer.start()
        await self.follower.start()
        await self.consumer.start()
        self.consumer.subscribe(
            [self.topics.events], listener=_TimerOwnership(self.pump, self.topics.events)
        )
        self._started = True
        for coroutine in (self.follower.follow(), self.pump.run()):
            task = asyncio.create_task(coroutine)
            task.add_done_callback(self._supervise)
            self._tasks.append(task)
        log.info("journey worker started with %d journeys", len(self.follower.catalog))

    def _supervise(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("background task failed, stopping the worker", exc_info=error)
            self._failure = error
            self._stopping.set()

    def stop(self) -> None:
        """Ask `run()` to finish its current batch and return."""
        self._stopping.set()

    async def run(self) -> None:
        """Process batches until `stop()`; re-raises a background task's failure."""
        last_report = time.monotonic()
        wait_ms = self.settings.batch_wait_ms
        while not self._stopping.is_set():
            batches = await self.consumer.getmany(
                timeout_ms=max(wait_ms, 100), max_records=self.settings.batch_max
            )
            if batches:
                await self._process(batches)
            if time.monotonic() - last_report > 10:
                last_report = time.monotonic()
                log.info(
                    "applied %d events (%d duplicates, %d dead letters), fired %d timers",
                    self.totals.events,
                    self.totals.duplicates,
                    self.totals.deadletters,
                    self.pump.fired,
                )
        if self._failure is not None:
            raise self._failure

    async def _process(self, batches: dict[TopicPartition, list[Any]]) -> None:
        records = [
            InboundRecord(m.topic, m.partition, m.offset, m.key, m.value)
            for tp in sorted(batches, key=lambda t: t.partition)
            for m in batches[tp]
        ]
        stats = await self.processor.process(records)
        await self.consumer.commit({tp: msgs[-1].offset + 1 for tp, msgs in batches.items()})
        self.totals.events += stats.events
        self.totals.duplicates += stats.duplicates
        self.totals.deadletters += stats.deadletters

    async def close(self) -> None:
        """Stop background tasks and close connections; safe to call twice."""
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._started:
            self._started = False
            await self.consumer.stop()
            await self.follower.stop()
            await self.producer.stop()
        await self.redis.aclose()
