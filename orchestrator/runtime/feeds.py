"""Where batches of `events` records come from: a faust agent or a bare aiokafka consumer.

Both hand `InboundRecord` batches, in partition order, to the same batch core and report
which `events` partitions this worker gains and loses through two callbacks (the worker
hands them to its `TimerPump`). Offsets are committed only after the core has
processed a batch (at-least-once; the core makes redelivery harmless).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable, Iterable, Sequence, Set
from dataclasses import dataclass
from typing import Any, Protocol, cast

import faust
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from faust.exceptions import AlreadyConfiguredWarning
from faust.transport.consumer import Consumer as FaustConsumer

from orchestrator.errors import OrchestratorError
from orchestrator.infra.outage import StoppedWhileWaitingError
from orchestrator.infra.settings import Settings
from orchestrator.runtime.context import WorkerContext
from orchestrator.runtime.processor import InboundRecord
from orchestrator.runtime.store import StaleStateError

__all__ = [
    "AiokafkaFeed",
    "BatchHandler",
    "FaustFeed",
    "Feed",
    "FeedCrashedError",
    "Ownership",
    "make_feed",
]

log = logging.getLogger(__name__)

BatchHandler = Callable[[Sequence[InboundRecord]], Awaitable[None]]

# How long an idle feed waits for a first record before checking whether it should stop.
_IDLE_WAIT_MS = 100


class Feed(Protocol):
    """A source of record batches for the journey worker."""

    async def start(self) -> None:
        """Connect and join the consumer group."""
        ...

    async def run(self, stopping: asyncio.Event) -> None:
        """Feed batches to the handler until `stopping` is set."""
        ...

    async def close(self) -> None:
        """Leave the group and disconnect; safe to call twice."""
        ...

    def lag(self) -> dict[int, int]:
        """Records not yet processed per owned partition whose end offset is known.

        Read from the consumer's own bookkeeping (the end offset comes with each fetch
        response): no broker round trip, so `/metrics` may call it at every scrape.
        """
        ...


@dataclass(frozen=True, slots=True)
class Ownership:
    """What a feed calls when the group gives this worker `events` partitions or takes
    them away, with the partition numbers."""

    on_assigned: Callable[[Set[int]], None]
    on_revoked: Callable[[Set[int]], None]

    def report(self, topic: str, partitions: Iterable[TopicPartition], owned: bool) -> None:
        """Call the matching callback with the numbers of `topic`'s partitions."""
        numbers = {tp.partition for tp in partitions if tp.topic == topic}
        (self.on_assigned if owned else self.on_revoked)(numbers)


class _RebalanceListener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, ownership: Ownership, topic: str, forget: Callable[[], None]) -> None:
        self.ownership = ownership
        self.topic = topic
        self.forget = forget

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        # Before any partition is assigned again: whatever the feed took but has not
        # processed comes again from the committed offsets (here or at the new owner).
        self.forget()
        self.ownership.report(self.topic, revoked, owned=False)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.ownership.report(self.topic, assigned, owned=True)


Records = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


class AiokafkaFeed:
    """`getmany` batches from a consumer-group member; commits after each batch.

    A batch is what the broker holds when the batch core is ready for one (see
    `_next_batch`): records never wait a whole batch in the consumer's buffer, and batches
    grow with the load by themselves. Records taken but not yet processed are dropped when
    partitions are revoked, so a batch never mixes records read before and after a rebalance.
    """

    def __init__(
        self, settings: Settings, topic: str, handle: BatchHandler, ownership: Ownership
    ) -> None:
        self.settings = settings
        self.topic = topic
        self.handle = handle
        self.ownership = ownership
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=settings.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=settings.batch_max,
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=max(300, settings.session_timeout_ms // 4),
        )
        self.listener = _RebalanceListener(ownership, topic, self._forget)
        self._started = False
        # Records taken from the consumer for the batch being made, and when the last was.
        self._taken: Records = {}
        self._taken_at = time.monotonic()

    async def start(self) -> None:
        """Join the group."""
        await self.consumer.start()
        self._started = True
        self.consumer.subscribe([self.topic], listener=self.listener)

    async def run(self, stopping: asyncio.Event) -> None:
        """Fetch, process, commit, until stopped."""
        while not stopping.is_set():
            batches = await self._next_batch()
            if not batches:
                continue
            try:
                await self.handle(
                    [
                        InboundRecord(m.topic, m.partition, m.offset, m.key, m.value, m.headers)
                        for tp in sorted(batches, key=lambda t: t.partition)
                        for m in batches[tp]
                    ]
                )
            except StaleStateError as exc:
                # A rebalance does not wait for the batch: the new owner of some of its
                # partitions wrote these customers first. Nothing of the batch was produced
                # or committed; reading it again finishes what this worker still owns (the
                # customers it did write carry their outbox), the new owner does the rest.
                log.warning("%s: reading the batch again", exc)
                self._rewind(batches)
                continue
            await self._commit(batches)

    def _rewind(self, batches: Records) -> None:
        """Seek the partitions of `batches` this worker still owns back to the batch's start
        (nothing else was taken from the consumer: `_next_batch` emptied `_taken`)."""
        owned = self.consumer.assignment()
        for tp, records in batches.items():
            if tp in owned:
                self.consumer.seek(tp, records[0].offset)

    async def _commit(self, batches: Records) -> None:
        """Commit a processed batch's offsets, of the partitions this worker still owns.

        The group may have rebalanced while the batch ran (a worker joined or left, or a
        Kafka outage outlasted the session): a partition taken away meanwhile, or all of
        them while the group is still rebalancing, cannot be committed here. That is no
        error: the partition's new owner gets those records again and skips them as
        duplicates. It once was, and stopped the worker whenever a second one started.
        """
        owned = self.consumer.assignment()
        offsets = {tp: ms[-1].offset + 1 for tp, ms in batches.items() if tp in owned}
        if len(offsets) < len(batches):
            log.info("a rebalance took partitions of a processed batch: their owner redoes it")
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            log.warning("offsets of a processed batch not committed: %s", exc)

    async def _next_batch(self) -> Records:
        """What the consumer holds, topped up with what the broker got since; else the first
        records to arrive within `_IDLE_WAIT_MS`.

        aiokafka fetches while a batch runs, but the response comes back at once with the
        few records published in the batch's first milliseconds, and the consumer fetches
        nothing more from that broker until those are taken. Taken alone, they would make
        everything published during the batch wait a whole further batch. Taking them sends
        the fetch for the rest, and the batch waits for its answer, at most `batch_wait_ms`
        and never longer than the last batch took: a top-up may find nothing, and must not
        cost records more than they have already waited.
        """
        since_ms = (time.monotonic() - self._taken_at) * 1000
        if not await self._take(0):
            await self._take(_IDLE_WAIT_MS)
        elif (wait_ms := min(self.settings.batch_wait_ms, int(since_ms))) > 0:
            await self._take(wait_ms)
        batch, self._taken = self._taken, {}
        self._taken_at = time.monotonic()
        return batch

    async def _take(self, timeout_ms: int) -> int:
        """Move records from the consumer to the next batch (up to `batch_max` in all),
        waiting up to `timeout_ms` for the first; how many were taken."""
        room = self.settings.batch_max - sum(len(records) for records in self._taken.values())
        if room <= 0:
            return 0
        records: Records = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=room)
        for tp, more in records.items():
            self._taken[tp] = self._taken.get(tp, []) + more
        return sum(len(more) for more in records.values())

    def _forget(self) -> None:
        self._taken = {}

    def lag(self) -> dict[int, int]:
        """End offset minus position (the next offset `getmany` hands out) per owned partition.

        Read from the subscription state `position()` reads too: that coroutine may wait for
        a broker round trip, and a scrape must not.
        """
        subscription = self.consumer._subscription.subscription
        assignment = subscription.assignment if subscription is not None else None
        if assignment is None:
            return {}
        lags: dict[int, int] = {}
        for tp in assignment.tps:
            state = assignment.state_value(tp)
            if tp.topic == self.topic and state.highwater is not None and state.has_valid_position:
                lags[tp.partition] = max(0, state.highwater - state.position)
        return lags

    async def close(self) -> None:
        """Leave the group (stopping even an unstarted consumer, which would warn otherwise)."""
        self._started = False
        await self.consumer.stop()


class FeedCrashedError(OrchestratorError):
    """The faust app stopped by itself; only a new worker process can go on."""


class FaustFeed:
    """A faust agent reading `events` with `stream.noack_take`.

    The agent acks a batch's events only after the handler returned; faust commits acked
    offsets (up to the first gap) every `broker_commit_interval`. If the handler fails, the
    agent parks without acking and the worker stops, so the batch is redelivered after a
    restart rather than skipped. On rebalance faust waits for the agent's current batch
    (`stream_wait_empty`), so two workers never apply one customer's events at once.
    """

    def __init__(
        self, settings: Settings, topic: str, handle: BatchHandler, ownership: Ownership
    ) -> None:
        self._failed = asyncio.Event()
        self._closing = asyncio.Event()
        self.failure: BaseException | None = None
        self._datadir = tempfile.TemporaryDirectory(prefix="orchestrator-faust-")
        self.app = faust.App(
            settings.group_id,
            broker=[f"kafka://{host}" for host in settings.kafka_bootstrap.split(",")],
            datadir=self._datadir.name,
            web_enabled=False,
            topic_allow_declare=False,
            topic_disable_leader=True,
            consumer_auto_offset_reset="earliest",
            broker_session_timeout=settings.session_timeout_ms / 1000,
            broker_heartbeat_interval=max(0.3, settings.session_timeout_ms / 4000),
            broker_commit_interval=0.5,
            broker_max_poll_records=settings.batch_max,
            stream_wait_empty=True,
            key_serializer="raw",
            value_serializer="raw",
        )
        events = self.app.topic(
            topic, key_type=bytes, value_type=bytes, partitions=settings.partitions
        )
        batch_max, within = settings.batch_max, max(settings.batch_wait_ms, 1) / 1000

        async def journeys(stream: Any) -> None:
            async for batch in stream.noack_take(batch_max, within=within):
                records = [
                    InboundRecord(
                        e.message.topic,
                        e.message.partition,
                        e.message.offset,
                        e.message.key,
                        e.message.value,
                        e.message.headers,
                    )
                    for e in batch
                ]
                try:
                    await handle(records)
                except Exception as exc:  # stop the worker; the batch stays unacked
                    if isinstance(exc, StoppedWhileWaitingError):
                        log.warning("%s; it will be redelivered", exc)
                    else:
                        log.exception("batch failed; stopping so it is redelivered")
                    self.failure = exc
                    self._failed.set()
                    self._give_up_acks()
                else:
                    for event in batch:
                        await stream.ack(event)
                    continue
                # Park until the feed closes: returning or raising now would let faust move
                # past the batch, and a cancellation while parked would be logged as a crash.
                await self._closing.wait()
                return

        self.app.agent(events, name="journeys", concurrency=1)(journeys)

        async def assigned(app: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
            ownership.report(topic, args[0], owned=True)

        async def revoked(app: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
            ownership.report(topic, args[0], owned=False)

        self.app.on_partitions_assigned.connect(assigned)
        self.app.on_partitions_revoked.connect(revoked)
        self.topic = topic
        self._started = False

    def _give_up_acks(self) -> None:
        # Nothing will ever ack the failed batch or the records buffered behind it. Left
        # tracked, they would make a rebalance (another worker joining or leaving before
        # this one has stopped) wait for them forever, and that wedged the consumer thread
        # so the process could not exit. Forgetting them commits nothing: faust commits
        # only acked offsets, up to the first gap, so they are redelivered.
        with warnings.catch_warnings():
            # faust warns that code may still hold the old value; the rebalance and stop
            # paths read it afresh each time, which is all this needs.
            warnings.simplefilter("ignore", AlreadyConfiguredWarning)
            self.app.conf.stream_wait_empty = False
        self.app.consumer.unacked.clear()

    async def start(self) -> None:
        """Start the faust app (consumer, agent) inside the running event loop."""
        await self.app.start()
        self._started = True

    async def run(self, stopping: asyncio.Event) -> None:
        """faust drives the agent by itself; wait until stopped or the app crashes."""
        crashed = asyncio.ensure_future(self.app.wait_until_stopped())
        stopped = asyncio.ensure_future(stopping.wait())
        failed = asyncio.ensure_future(self._failed.wait())
        try:
            await asyncio.wait({crashed, stopped, failed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (crashed, stopped, failed):
                waiter.cancel()
        if self.failure is not None:
            raise self.failure
        if self.app.crash_reason is not None:
            # Not retriable whatever the cause: a crashed app does not come back by itself.
            raise FeedCrashedError(
                f"the faust app crashed ({self.app.crash_reason!r}); the worker stops so "
                "that its supervisor restarts it"
            ) from self.app.crash_reason

    def lag(self) -> dict[int, int]:
        """End offset minus the committed offset per owned partition (an acked batch counts
        once faust has committed it, within `broker_commit_interval`)."""
        if not self._started:
            return {}
        # The concrete class: the `ConsumerT` interface does not declare the committed offsets.
        consumer = cast(FaustConsumer, self.app.consumer)
        lags: dict[int, int] = {}
        for tp in consumer.assignment():
            if tp.topic != self.topic:
                continue
            try:
                end = consumer.highwater(tp)
            except AssertionError:  # unassigned by a rebalance since `assignment()`
                continue
            if end is None:
                continue
            # faust's own record of what it committed; None until its first commit, when
            # the group had nothing committed yet: everything from offset 0 is pending.
            committed = consumer._committed_offset.get(tp) or 0
            lags[tp.partition] = max(0, end - committed)
        return lags

    async def close(self) -> None:
        """Stop the app, committing what was acked."""
        self._closing.set()
        if self._started:
            self._started = False
            await self.app.stop()
        self._datadir.cleanup()


def make_feed(context: WorkerContext, handle: BatchHandler, ownership: Ownership) -> Feed:
    """The feed `settings.feed` names, reading the context's `events` topic."""
    settings, topic = context.settings, context.topics.events
    if settings.feed == "faust":
        return FaustFeed(settings, topic, handle, ownership)
    return AiokafkaFeed(settings, topic, handle, ownership)
