"""`orchestrator worker`: a journey worker in the consumer group of the `events` topic."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from orchestrator.infra.batching import RecordBatcher
from orchestrator.infra.clock import Clock
from orchestrator.infra.deploylog import CatalogFollower
from orchestrator.infra.names import TopicNames
from orchestrator.infra.outage import (
    Dependency,
    Health,
    StoppedWhileWaitingError,
    ride_out,
    wait_until_up,
)
from orchestrator.infra.producer import RenewableProducer
from orchestrator.infra.redisclient import connect_redis
from orchestrator.infra.settings import Settings
from orchestrator.infra.topiclimits import TopicLimits
from orchestrator.infra.topics import ensure_topics
from orchestrator.runtime.context import WorkerContext
from orchestrator.runtime.feeds import Ownership, make_feed
from orchestrator.runtime.health import Figures, WorkerMetrics, worker_health_server
from orchestrator.runtime.processor import BatchProcessor, BatchStats, InboundRecord
from orchestrator.runtime.store import CustomerStore
from orchestrator.runtime.timers import TimerPump

__all__ = ["JourneyWorker"]

log = logging.getLogger(__name__)
_REPORT_EVERY = 10.0
# How often the dependencies are probed, so /health tells the truth while no batch runs.
_PROBE_EVERY = 2.0
_PROBE_TIMEOUT = 5.0
# How often the output topics' max.message.bytes is re-read: a limit lowered meanwhile costs
# at most one refused batch (and a producer renewal), which re-reads it at once.
_LIMITS_EVERY = 60.0


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class JourneyWorker:
    """Applies journeys to `events` batches and fires the timers of the partitions it owns.

    Use `async with JourneyWorker(settings) as worker: await worker.run()`; `stop()` is
    idempotent and safe from a signal handler. Batches come from the feed `settings.feed`.
    Kafka and Redis outages are waited out (`health` says which one); only errors that
    retrying cannot fix, or `stop()`, end `run()`. With `create_topics`, start-up also
    creates missing topics (what `orchestrator worker` does).
    """

    def __init__(
        self, settings: Settings, clock: Clock | None = None, *, create_topics: bool = False
    ) -> None:
        self.settings = settings
        self.create_topics = create_topics
        self.health = Health(
            {"kafka": settings.kafka_bootstrap, "redis": _without_password(settings.redis_url)}
        )
        # Kept as the concrete clients: the worker alone starts, probes and closes them.
        self.redis = connect_redis(settings)
        # Renewable: a batch the broker refuses breaks an idempotent producer's sequence, and
        # the worker replaces the producer rather than restarting.
        self.producer = RenewableProducer(settings.kafka_bootstrap)
        names = TopicNames(settings.topic_prefix)
        self.limits = TopicLimits(
            settings.kafka_bootstrap, [names.outbound, names.interactions, names.deadletter]
        )
        # The engine's key in it is read in `start()`, before anything signs or verifies.
        self.context = WorkerContext.of(
            settings, producer=self.producer, redis=self.redis, clock=clock
        )
        self.follower = CatalogFollower(settings.kafka_bootstrap, self.context.topics.journeys)
        self.metrics = WorkerMetrics()
        self.pump = TimerPump(self.context, lateness=self.metrics.timer_lateness.observe)
        self.processor = BatchProcessor(
            self.context,
            store=CustomerStore(self.redis, self.context.keys),
            catalog=lambda: self.follower.catalog,
            batcher=RecordBatcher(self.producer, limits=self.limits, renew=self.producer.renew),
        )
        self.feed = make_feed(
            self.context, self._handle, Ownership(self.pump.assign, self.pump.revoke)
        )
        self.server = (
            worker_health_server(
                self.health, self.figures, self.metrics, settings.health_host, settings.health_port
            )
            if settings.health_port
            else None
        )
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

    def figures(self) -> Figures:
        """The running totals `/metrics` reports."""
        return Figures(
            events=self.totals.events,
            duplicates=self.totals.duplicates,
            late=self.totals.late,
            deadletters=self.totals.deadletters,
            timers_fired=self.pump.fired,
            batch_retries=self.health.retries,
            lag=self.feed.lag(),
        )

    async def start(self) -> None:
        """Wait for Redis and Kafka, load the catalog to the end of the deploy log, join.

        The catalog is complete before the first event is applied, so a restart never
        applies events against a partial set of journeys. Waits up to
        `ORCHESTRATOR_STARTUP_TIMEOUT_S` for Redis and Kafka, then raises
        `DependencyUnavailableError`; on any failure everything opened so far is closed.
        """
        try:
            await self._start()
        except BaseException:
            await self.close()
            raise

    async def _start(self) -> None:
        if self.server is not None:
            await self.server.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.startup_timeout_s

        steps: list[tuple[Dependency, Callable[[], Awaitable[object]]]] = [
            ("redis", self.redis.ping),
            ("redis", lambda: self.context.origin.load(self.redis, self.context.keys)),
        ]
        if self.create_topics:
            steps.append(("kafka", lambda: ensure_topics(self.settings)))
        steps += [
            ("kafka", self.limits.load),
            ("kafka", self.producer.start),
            ("kafka", self.follower.start),
        ]
        for dependency, step in steps:
            await wait_until_up(
                step,
                dependency=dependency,
                health=self.health,
                deadline=deadline,
                stopping=self._stopping,
            )
        self._started = True
        await self.feed.start()
        for coroutine in (
            self.follower.follow(self._stopping, self.health),
            self.pump.run(self._stopping, self.health),
            self._probe(),
            self.limits.follow(self._stopping, _LIMITS_EVERY),
        ):
            task = asyncio.create_task(coroutine)
            task.add_done_callback(self._supervise)
            self._tasks.append(task)
        self.health.set_phase("healthy")
        log.info(
            "journey worker started (%s feed) with %d journeys",
            self.settings.feed,
            len(self.follower.catalog),
        )

    def _supervise(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None and not isinstance(error, StoppedWhileWaitingError):
            log.error("background task failed, stopping the worker", exc_info=error)
            self._failure = error
            self._stopping.set()

    async def _probe(self) -> None:
        """Check both dependencies every few seconds, so `/health` is right while idle."""
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self.redis.ping(), _PROBE_TIMEOUT)
            except (RedisError, OSError, TimeoutError) as exc:
                self.health.failed("redis", exc)
            else:
                self.health.recovered("redis")
            try:
                await asyncio.wait_for(self.producer.client.fetch_all_metadata(), _PROBE_TIMEOUT)
            except (KafkaError, OSError, TimeoutError) as exc:
                self.health.failed("kafka", exc)
            else:
                self.health.recovered("kafka")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), _PROBE_EVERY)

    def stop(self) -> None:
        """Ask `run()` to finish its current batch and return; timers stop firing too."""
        self._stopping.set()

    async def run(self) -> None:
        """Process batches until `stop()`; re-raises a failure retrying cannot fix.

        Once stopping, a feed still blocked on a broker that is away gets a few seconds,
        then is abandoned: nothing of the batch in hand was committed.
        """
        try:
            await ride_out(
                lambda: self.feed.run(self._stopping),
                health=self.health,
                stopping=self._stopping,
                what="the feed",
            )
        except StoppedWhileWaitingError as exc:
            log.warning("%s", exc)
        if self._failure is not None:
            raise self._failure

    async def _handle(self, records: Sequence[InboundRecord]) -> None:
        stats = await ride_out(
            lambda: self._timed_process(records),
            health=self.health,
            stopping=self._stopping,
            what=f"a batch of {len(records)} events",
            on_retry=self._count_retry,
        )
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

    async def _timed_process(self, records: Sequence[InboundRecord]) -> BatchStats:
        # Timed per attempt: a retried batch's wait for Kafka or Redis is not its latency.
        started = time.perf_counter()
        stats = await self.processor.process(records)
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        return stats

    def _count_retry(self) -> None:
        self.health.retries += 1

    async def close(self) -> None:
        """Stop the feed and background tasks, close connections; safe to call twice.

        Each step gets a bounded time (`ORCHESTRATOR_SHUTDOWN_TIMEOUT_S` in all): a client
        waiting on a broker that is away is abandoned with a warning rather than waited
        for. Nothing is lost by that: only processed batches were committed.
        """
        self._stopping.set()
        self.health.set_phase("stopping")
        budget = self.settings.shutdown_timeout_s
        await _bounded("the feed", self.feed.close(), budget / 2)
        # Cancel for promptness; `_stopping` ends their loops even if a client library
        # swallows the cancellation (seen once: the timer pump went on polling, close() hung).
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await _bounded(
                "the timer pump and catalog follower",
                asyncio.gather(*self._tasks, return_exceptions=True),
                budget / 8,
            )
        self._tasks.clear()
        # Stopped even if never started: an unstopped client warns "Unclosed AIOKafka...".
        self._started = False
        await _bounded("the deploy log consumer", self.follower.stop(), budget / 8)
        await _bounded("the producer", self.producer.stop(), budget / 8)
        await _bounded("the Redis client", self.redis.aclose(), budget / 16)
        if self.server is not None:
            await _bounded("the health server", self.server.stop(), budget / 16)


async def _bounded(what: str, step: Awaitable[object], seconds: float) -> None:
    """Await a close step for at most `seconds`; abandon it with a warning after that."""
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if task in done:
        if not task.cancelled() and task.exception() is not None:
            log.warning("closing %s failed: %r", what, task.exception())
        return
    # Not awaited after cancel: a client that swallows cancellation would hang us again.
    task.cancel()
    log.warning(
        "closing %s took over %.1f s; abandoned (nothing uncommitted is lost)", what, seconds
    )
