"""One channel's runner: its own consumer group on `outbound`, and its retry schedule.

Each channel consumes `outbound` in a consumer group of its own (`<connector_group>.<channel>`)
and skips the other channels' messages, so each channel commits its own offsets: an SMS
provider that is slow or down holds up only the SMS group, and emails keep flowing. Within a
channel, nothing waits in memory either: a message that cannot go now is moved to the
channel's durable schedule in Redis and its offset committed (see `delivery.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError, IllegalStateError

from connectors.base import MalformedMessageError, OutboundMessage, read_outbound
from connectors.delivery import Delivery
from connectors.records import ReceiptSink
from orchestrator import jsonwire
from orchestrator.contracts.codec import DeadLetter
from orchestrator.infra.names import TopicNames
from orchestrator.infra.outage import Health, ride_out
from orchestrator.infra.reach import start_kafka_client
from orchestrator.infra.settings import Settings

__all__ = ["ChannelRunner", "group_of"]

log = logging.getLogger(__name__)
T = TypeVar("T")

# Most records one `getmany` hands over: a batch is committed once all of it is handled.
_BATCH = 200


def group_of(settings: Settings, channel: str) -> str:
    """The consumer group of one channel's connector workers."""
    return f"{settings.connector_group}.{channel}"


class ChannelRunner:
    """Feeds one channel's `Delivery` from `outbound` and from its retry schedule."""

    def __init__(
        self,
        settings: Settings,
        delivery: Delivery,
        sink: ReceiptSink,
        health: Health,
        lease: float,
    ) -> None:
        self.channel = delivery.connector.channel
        self.delivery = delivery
        self.sink = sink
        self.health = health
        self.lease = lease
        self.poll = settings.connector_poll_ms / 1000
        self.bootstrap = settings.kafka_bootstrap
        self.topic = TopicNames(settings.topic_prefix).outbound
        self.concurrency = settings.connector_concurrency
        self.slots = asyncio.Semaphore(self.concurrency)
        self.stopping = asyncio.Event()
        self.consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=group_of(settings, self.channel),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=settings.session_timeout_ms,
            max_poll_records=_BATCH,
        )

    async def start(self) -> None:
        """Join the channel's consumer group."""
        await start_kafka_client(self.consumer.start, self.consumer.stop, self.bootstrap)

    def stop(self) -> None:
        """Ask both loops to end after what they are handling (idempotent)."""
        self.stopping.set()

    async def close(self) -> None:
        """Leave the group (uncommitted records go to the next owner: dedupe covers them)."""
        await self.consumer.stop()

    async def run(self) -> None:
        """Consume and drain the schedule until `stop()`; either loop failing ends both."""
        tasks = [
            asyncio.create_task(self._consume(), name=f"{self.channel}-consume"),
            asyncio.create_task(self._drain(), name=f"{self.channel}-schedule"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            self.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _consume(self) -> None:
        while not self.stopping.is_set():
            batches = await self.consumer.getmany(timeout_ms=500, max_records=_BATCH)
            records = [record for partition in batches.values() for record in partition]
            if not records:
                continue
            mine: list[tuple[OutboundMessage, int, bool]] = []
            for record in records:
                message = await self._decode(record)
                if message is not None and message.channel == self.channel:
                    mine.append((message, 0, False))
            # Handled (sent, failed for good, or moved to the schedule) before the commit,
            # so a crash in between redelivers them, and the marks keep that from sending
            # twice.
            await self._ride_out(functools.partial(self._handle, mine, False), "outbound batch")
            try:
                await self.consumer.commit()
            except (CommitFailedError, IllegalStateError) as exc:
                # A rebalance took the partitions: their new owner redoes the batch.
                log.info("%s: commit skipped after a rebalance: %s", self.channel, exc)

    async def _drain(self) -> None:
        schedule = self.delivery.schedule
        limit = self.concurrency * 4  # enough to keep every slot busy between polls
        while not self.stopping.is_set():
            taken = await self._ride_out(
                lambda: schedule.take(time.time(), limit, self.lease), "retry schedule"
            )
            if taken:
                work = [(read_outbound(t.message), t.attempt, t.reserved) for t in taken]
                await self._ride_out(functools.partial(self._handle, work, True), "retries")
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.poll)

    async def _handle(
        self, work: Iterable[tuple[OutboundMessage, int, bool]], scheduled: bool
    ) -> None:
        """Each customer's messages in order; different customers' at once, up to the slots.

        `work`: (message, tries so far, whether the rate limiter reserved now for it)."""
        by_customer: dict[str, list[tuple[OutboundMessage, int, bool]]] = defaultdict(list)
        for item in work:
            by_customer[item[0].customer_id].append(item)

        async def one_customer(items: list[tuple[OutboundMessage, int, bool]]) -> None:
            for message, attempt, reserved in items:
                async with self.slots:
                    await self.delivery.handle(message, attempt, scheduled, reserved=reserved)

        await asyncio.gather(*(one_customer(items) for items in by_customer.values()))

    async def _decode(self, record: Any) -> OutboundMessage | None:
        try:
            return read_outbound(jsonwire.loads(record.value or b""))
        except (jsonwire.JSONDecodeError, MalformedMessageError) as exc:
            letter = DeadLetter(
                f"not an outbound message: {exc}",
                self.topic,
                record.partition,
                record.offset,
                record.key,
                record.value,
            )
            await self._ride_out(lambda: self._deadletter_once(letter), "dead letter")
            return None

    async def _deadletter_once(self, letter: DeadLetter) -> None:
        # Every channel's group reads the record; the first to get here keeps it.
        name = f"deadletter:{letter.topic}:{letter.partition}:{letter.offset}"
        if await self.delivery.context.marks.first(name):
            await self.sink.deadletter(letter)

    async def _ride_out(self, attempt: Callable[[], Awaitable[T]], what: str) -> T:
        return await ride_out(attempt, health=self.health, stopping=self.stopping, what=what)
