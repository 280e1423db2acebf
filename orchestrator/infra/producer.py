"""The one way every process makes a Kafka producer: idempotent, `acks=all`.

Idempotence plus `acks=all` is what lets the commit path say "produced" only when the
broker holds the record once; every producer of ours needs both, so no caller spells them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_REQUEST_BYTES",
    "RenewableProducer",
    "idempotent_producer",
    "transactional_producer",
]

log = logging.getLogger(__name__)

# aiokafka's (and the broker's default) ceiling on one request, stated so records can be
# checked against it before they are sent.
MAX_REQUEST_BYTES = 1024 * 1024
# Per-partition batches this large amortise a request over thousands of small records.
MAX_BATCH_BYTES = 256 * 1024
# How long a replaced producer gets to finish what it holds before it is abandoned.
_OLD_STOP_SECONDS = 5.0


def idempotent_producer(
    bootstrap: str, *, linger_ms: int = 5, max_request_size: int = MAX_REQUEST_BYTES
) -> AIOKafkaProducer:
    """An unstarted idempotent producer (`acks=all`); `linger_ms` trades latency for batching,
    `max_request_size` is raised only for deploy records (a journey's every version)."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=linger_ms,
        max_batch_size=MAX_BATCH_BYTES,
        max_request_size=max_request_size,
    )


def transactional_producer(bootstrap: str, transactional_id: str) -> AIOKafkaProducer:
    """An unstarted transactional producer (idempotent, `acks=all`): its records and the
    consumer offsets sent with them commit together or not at all. Starting one with the same
    `transactional_id` fences (and aborts the open transaction of) an earlier incarnation."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        transactional_id=transactional_id,
        max_batch_size=MAX_BATCH_BYTES,
        max_request_size=MAX_REQUEST_BYTES,
    )


class RenewableProducer:
    """An idempotent producer that can be replaced by a fresh one while in use.

    After the broker refuses one of an idempotent producer's batches, that producer's
    sequence for the partition is broken: every later batch to it fails with
    `OutOfOrderSequenceNumber`. A new producer gets a new producer id and clean sequences,
    so `renew()` is how a worker recovers without restarting. Everything that produces
    goes through this object, so no part keeps using the old producer.
    """

    def __init__(self, bootstrap: str, *, linger_ms: int = 0) -> None:
        # No linger by default: what the worker sends are whole batches it filled itself
        # (`infra/batching.py`, the timer pump), queued all at once before the sender runs,
        # so lingering batches nothing more and only holds every batch's records back.
        self.bootstrap = bootstrap
        self.linger_ms = linger_ms
        self.current = idempotent_producer(bootstrap, linger_ms=linger_ms)
        self.renewals = 0

    @property
    def client(self) -> Any:
        """The current producer's client (for metadata probes)."""
        return self.current.client

    async def start(self) -> None:
        """Start the current producer."""
        await self.current.start()

    async def stop(self) -> None:
        """Stop the current producer."""
        await self.current.stop()

    async def renew(self) -> None:
        """Start a new producer and switch to it, then stop the old one.

        If the new one cannot start (Kafka away), the old one stays and the error is raised.
        """
        fresh = idempotent_producer(self.bootstrap, linger_ms=self.linger_ms)
        try:
            await fresh.start()
        except BaseException:
            await fresh.stop()
            raise
        old, self.current = self.current, fresh
        self.renewals += 1
        log.warning("replaced the Kafka producer (renewal %d) after a refused batch", self.renewals)
        # Whatever the old one still holds fails or lands; either way it is not ours to wait
        # on for long, and a broken sequence makes its retries pointless.
        try:
            await asyncio.wait_for(old.stop(), _OLD_STOP_SECONDS)
        except (TimeoutError, KafkaError, OSError) as exc:
            log.warning("stopping the replaced producer failed: %r", exc)

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        *,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]:
        """Queue one record on the current producer."""
        future: asyncio.Future[Any] = await self.current.send(
            topic, value, key=key, partition=partition, headers=headers
        )
        return future

    def create_batch(self) -> Any:
        """An empty `BatchBuilder` of the current producer."""
        return self.current.create_batch()

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[Any]:
        """Queue a filled batch on the current producer."""
        future: asyncio.Future[Any] = await self.current.send_batch(
            batch, topic, partition=partition
        )
        return future

    async def partitions_for(self, topic: str) -> set[int]:
        """The topic's partition ids."""
        found: set[int] = await self.current.partitions_for(topic)
        return found
