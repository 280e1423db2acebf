"""Durable timers: one Redis sorted set per `events` partition, fired as `timer.fired` events.

Firing goes through Kafka, under the customer's key, so a timer is ordered with the
customer's other events and is applied by whichever worker owns the partition.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Set
from typing import Any

from orchestrator import jsonwire
from orchestrator.contracts.events import EventRecord
from orchestrator.engine.events import timer_event
from orchestrator.infra.outage import Health, StoppedWhileWaitingError, ride_out
from orchestrator.runtime.context import WorkerContext

__all__ = ["TimerPump"]

log = logging.getLogger(__name__)


class TimerPump:
    """Fires due timers of the partitions this worker owns.

    The feed says which those are, through `assign` and `revoke` (the worker wires them to
    the feed's rebalance callbacks). `lateness`, if given, is called with each fired timer's
    seconds past its due time (in the context clock's seconds), once the broker has it.
    """

    def __init__(
        self,
        context: WorkerContext,
        *,
        batch: int = 5000,
        lateness: Callable[[float], None] | None = None,
    ) -> None:
        self.redis = context.redis
        self.producer = context.producer
        # Signs each firing: the worker applies a `timer.fired` only with the engine's proof.
        self.origin = context.origin
        self.events = context.topics.events
        self.timers_key = context.timers_key
        self.clock = context.clock
        self.poll_seconds = context.settings.timer_poll_ms / 1000
        self.batch = batch
        self.lateness = lateness
        self._partitions: set[int] = set()
        self._next_due: float | None = None
        self.fired = 0

    @property
    def partitions(self) -> set[int]:
        """A copy of the `events` partitions whose timers this worker fires now."""
        return set(self._partitions)

    def assign(self, partitions: Set[int]) -> None:
        """Start firing the timers of these partitions (this worker owns them now)."""
        self._partitions.update(partitions)
        log.info("owning partitions %s", sorted(self._partitions))

    def revoke(self, partitions: Set[int]) -> None:
        """Stop firing the timers of these partitions (another worker owns them now)."""
        self._partitions.difference_update(partitions)
        log.info("owning partitions %s", sorted(self._partitions))

    async def run(self, stopping: asyncio.Event, health: Health) -> None:
        """Fire due timers until `stopping` is set (run as a task).

        Kafka or Redis trouble is waited out with backoff (reported to `health`), not
        fatal: a round that failed left its timers in Redis, so the next one fires them.
        """
        while not stopping.is_set():
            try:
                fired = await ride_out(
                    self.fire_due, health=health, stopping=stopping, what="firing due timers"
                )
            except StoppedWhileWaitingError:
                return
            if fired < self.batch:
                await asyncio.sleep(self._pause())

    async def fire_due(self) -> int:
        """Produce every due timer of owned partitions (up to `batch` each), then remove them.

        A crash between produce and remove fires a timer twice; its event id is
        deterministic, so the engine applies it once.
        """
        partitions = sorted(self._partitions)
        if not partitions:
            return 0
        now = self.clock.now()
        async with self.redis.pipeline(transaction=False) as pipe:
            for partition in partitions:
                key = self.timers_key(partition)
                pipe.zrangebyscore(key, "-inf", now, start=0, num=self.batch, withscores=True)
                # The next timer after these: the pump wakes for it rather than a poll later.
                pipe.zrangebyscore(key, f"({now}", "+inf", start=0, num=1, withscores=True)
            replies = await pipe.execute()
        self._next_due = min((float(r[0][1]) for r in replies[1::2] if r), default=None)
        due_at: list[float] = []
        filled: list[tuple[int, list[Any]]] = []
        removals: list[tuple[str, list[bytes]]] = []
        # Every record is built before the first is handed over: handing over a partition's
        # next batch waits until the producer has sent its previous one, and meanwhile the
        # batch core takes the loop (applying the timers just fired) while the rest of the
        # burst was not even built.
        for partition, due in zip(partitions, replies[::2], strict=True):
            if not due:
                continue
            filled.append((partition, self._fill(due)))
            due_at.extend(float(score) for _, score in due)
            removals.append((self.timers_key(partition), [member for member, _ in due]))
        if not filled:
            return 0
        # Each partition's first batch, then each one's second...: one request carries a
        # batch of every partition, rather than waiting on one partition's batches in turn.
        futures = [
            await self.producer.send_batch(batches[depth], self.events, partition=partition)
            for depth in range(max(len(batches) for _, batches in filled))
            for partition, batches in filled
            if depth < len(batches)
        ]
        await asyncio.gather(*futures)
        async with self.redis.pipeline(transaction=False) as pipe:
            for key, members in removals:
                pipe.zrem(key, *members)
            await pipe.execute()
        self.fired += len(due_at)
        if self.lateness is not None:
            for due in due_at:
                self.lateness(max(0.0, now - due))
        return len(due_at)

    def _fill(self, due: list[tuple[bytes, float]]) -> list[Any]:
        """One partition's due timers as `timer.fired` events, in filled batches.

        Batches, not `send` per record: `send` costs tens of microseconds each, and 10,000
        timers falling due at once would be that much later (`infra/batching.py`).
        """
        batch = self.producer.create_batch()
        batches = [batch]
        for member, score in due:
            customer, journey, instance, timer = jsonwire.loads(member)
            event = timer_event(customer, journey, instance, timer, float(score))
            key, value = customer.encode(), EventRecord.of(event).to_json()
            headers = self.origin.sign(key, value)
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                batch = self.producer.create_batch()
                batches.append(batch)
                batch.append(key=key, value=value, timestamp=None, headers=headers)
        return batches

    def _pause(self) -> float:
        """Seconds until the next round: the poll interval, or less when a timer known at
        the last round falls due sooner (in the clock's seconds, so never longer than the
        poll interval whatever the clock's pace)."""
        if self._next_due is None:
            return self.poll_seconds
        return min(self.poll_seconds, max(0.0, self._next_due - self.clock.now()))
