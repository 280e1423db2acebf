"""Durable timers: one Redis sorted set per `events` partition, fired as `timer.fired` events.

Firing goes through Kafka, under the customer's key, so a timer is ordered with the
customer's other events and is applied by whichever worker owns the partition.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from orchestrator import jsonwire
from orchestrator.contracts.events import EventRecord
from orchestrator.engine.events import timer_event
from orchestrator.infra.clock import Clock
from orchestrator.infra.names import RedisKeys, TopicNames
from orchestrator.infra.origin import EngineOrigin
from orchestrator.infra.outage import Health, StoppedWhileWaitingError, ride_out
from orchestrator.infra.redisclient import RedisClient

__all__ = ["SigningProducer", "TimerPump"]


class SigningProducer(Protocol):
    """The part of `AIOKafkaProducer` the pump uses: `send` with headers."""

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        *,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]:
        """Queue one record; the future resolves when the broker has it."""
        ...


log = logging.getLogger(__name__)


class TimerPump:
    """Fires due timers of the partitions this worker owns."""

    def __init__(
        self,
        *,
        redis: RedisClient,
        producer: SigningProducer,
        origin: EngineOrigin,
        topics: TopicNames,
        keys: RedisKeys,
        clock: Clock,
        poll_seconds: float,
        batch: int = 1000,
    ) -> None:
        self.redis = redis
        self.producer = producer
        # Signs each firing: the worker applies a `timer.fired` only with the engine's proof.
        self.origin = origin
        self.topics = topics
        self.keys = keys
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.batch = batch
        self.partitions: set[int] = set()
        self.fired = 0

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
                await asyncio.sleep(self.poll_seconds)

    async def fire_due(self) -> int:
        """Produce every due timer of owned partitions (up to `batch` each), then remove them.

        A crash between produce and remove fires a timer twice; its event id is
        deterministic, so the engine applies it once.
        """
        partitions = sorted(self.partitions)
        if not partitions:
            return 0
        now = self.clock.now()
        async with self.redis.pipeline(transaction=False) as pipe:
            for partition in partitions:
                pipe.zrangebyscore(
                    self._key(partition), "-inf", now, start=0, num=self.batch, withscores=True
                )
            replies = await pipe.execute()
        futures = []
        removals: list[tuple[str, list[bytes]]] = []
        for partition, due in zip(partitions, replies, strict=True):
            if not due:
                continue
            for member, score in due:
                customer, journey, instance, timer = jsonwire.loads(member)
                event = timer_event(customer, journey, instance, timer, float(score))
                key, value = customer.encode(), EventRecord.of(event).to_json()
                futures.append(
                    await self.producer.send(
                        self.topics.events,
                        value,
                        key=key,
                        partition=partition,
                        headers=self.origin.sign(key, value),
                    )
                )
            removals.append((self._key(partition), [member for member, _ in due]))
        if not futures:
            return 0
        await asyncio.gather(*futures)
        async with self.redis.pipeline(transaction=False) as pipe:
            for key, members in removals:
                pipe.zrem(key, *members)
            await pipe.execute()
        self.fired += len(futures)
        return len(futures)

    def _key(self, partition: int) -> str:
        return self.keys.timers(self.topics.events, partition)
