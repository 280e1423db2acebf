"""`orchestrator worker`: a journey worker in the consumer group of the `events` topic."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from types import TracebackType

from aiokafka import AIOKafkaProducer

from orchestrator.runtime.batching import PRODUCER_MAX_REQUEST_SIZE
from orchestrator.runtime.clock import Clock
from orchestrator.runtime.deploylog import CatalogFollower
from orchestrator.runtime.feeds import make_feed
from orchestrator.runtime.names import RedisKeys, TopicNames
from orchestrator.runtime.origin import EngineOrigin
from orchestrator.runtime.processor import BatchProcessor, BatchStats, InboundRecord
from orchestrator.runtime.redisclient import connect_redis
from orchestrator.runtime.settings import Settings
from orchestrator.runtime.store import CustomerStore
from orchestrator.runtime.timers import TimerPump

__all__ = ["JourneyWorker"]

log = logging.getLogger(__name__)
_REPORT_EVERY = 10.0


class JourneyWorker:
    """Applies journeys to `events` batches and fires the timers of the partitions it owns.

    Use `async with JourneyWorker(settings) as worker: await worker.run()`; `stop()` is
    idempotent and safe from a signal handler. Batches come from the feed `settings.feed`.
    """

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or Clock(settings.clock_speed, settings.clock_origin)
        self.topics = TopicNames(settings.topic_prefix)
        self.keys = RedisKeys(settings.redis_prefix)
        self.redis = connect_redis(settings)
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            max_batch_size=262144,
            max_request_size=PRODUCER_MAX_REQUEST_SIZE,
        )
        # Signs timer firings and verifies engine events; its key is read in `start()`.
        self.origin = EngineOrigin(settings.engine_key)
        self.follower = CatalogFollower(settings.kafka_bootstrap, self.topics.journeys)
        self.pump = TimerPump(
            redis=self.redis,
            producer=self.producer,
            origin=self.origin,
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
            origin=self.origin,
        )
        self.feed = make_feed(settings, self.topics.events, self._handle, self.pump)
        self.totals = BatchStats()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._started = False
        self._failure: BaseException | None = None
        self._last_report = time.monotonic()

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
        """Connect, load the catalog to the end of the deploy log, then join the group.

        The catalog is complete before the first event is applied, so a restart never
        applies events against a partial set of journeys.
        """
        await self.redis.ping()
        await self.origin.load(self.redis, self.keys)
        await self.producer.start()
        await self.follower.start()
        self._started = True
        await self.feed.start()
        for coroutine in (self.follower.follow(self._stopping), self.pump.run(self._stopping)):
            task = asyncio.create_task(coroutine)
            task.add_done_callback(self._supervise)
            self._tasks.append(task)
        log.info(
            "journey worker started (%s feed) with %d journeys",
            self.settings.feed,
            len(self.follower.catalog),
        )

    def _supervise(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("background task failed, stopping the worker", exc_info=error)
            self._failure = error
            self._stopping.set()

    def stop(self) -> None:
        """Ask `run()` to finish its current batch and return; timers stop firing too."""
        self._stopping.set()

    async def run(self) -> None:
        """Process batches until `stop()`; re-raises a background task's failure."""
        await self.feed.run(self._stopping)
        if self._failure is not None:
            raise self._failure

    async def _handle(self, records: Sequence[InboundRecord]) -> None:
        stats = await self.processor.process(records)
        self.totals.events += stats.events
        self.totals.duplicates += stats.duplicates
        self.totals.deadletters += stats.deadletters
        self.totals.late += stats.late
        if time.monotonic() - self._last_report > _REPORT_EVERY:
            self._last_report = time.monotonic()
            log.info(
                "applied %d events (%d duplicates, %d late, %d dead letters), fired %d timers",
                self.totals.events,
                self.totals.duplicates,
                self.totals.late,
                self.totals.deadletters,
                self.pump.fired,
            )

    async def close(self) -> None:
        """Stop the feed and background tasks, then close connections; safe to call twice."""
        self._stopping.set()
        await self.feed.close()
        # Cancel for promptness; `_stopping` ends their loops even if a client library
        # swallows the cancellation (seen once: the timer pump went on polling, close() hung).
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._started:
            self._started = False
            await self.follower.stop()
            await self.producer.stop()
        await self.redis.aclose()
