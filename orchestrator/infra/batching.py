"""Producing many records at once by filling per-partition batches directly.

`AIOKafkaProducer.send` costs tens of microseconds per record (a future, a partitioner
call, an accumulator lookup); a batch core that emits ~3 records per event spends more
there than in the engine. Appending to `BatchBuilder`s and submitting each once is the
same wire traffic for a fraction of the CPU.

A record that can never be produced (too large, a bad topic) must not stop the others, nor
fail the whole batch: a failed batch is redelivered and fails again, forever. So failures
are sorted per record: permanent ones are returned to the caller, which dead-letters those
records; only retriable ones (broker unreachable, leader moving) raise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka.errors import (
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    KafkaError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)
from aiokafka.partitioner import murmur2
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from orchestrator.errors import OrchestratorError
from orchestrator.infra.producer import MAX_REQUEST_BYTES

__all__ = [
    "ProduceUnavailableError",
    "Producer",
    "RecordBatcher",
    "Refused",
]


class ProduceUnavailableError(OrchestratorError):
    """The broker did not take records for a reason that may pass (retry the batch)."""

    retriable = True


@dataclass(frozen=True, slots=True)
class Refused:
    """A record (by its index in the `send_all` input) that retrying cannot produce."""

    index: int
    error: BaseException


class Producer(Protocol):
    """The part of `AIOKafkaProducer` the worker uses: batches for the batch core, `send`
    with headers for the timer pump's signed firings."""

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

    def create_batch(self) -> Any:
        """An empty `BatchBuilder`."""
        ...

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[Any]:
        """Queue a filled batch for one partition."""
        ...

    async def partitions_for(self, topic: str) -> set[int]:
        """The topic's partition ids."""
        ...


Record = tuple[str, bytes | None, bytes]


class RecordBatcher:
    """Sends (topic, key, value) records through one producer, partitioned like Kafka's
    default partitioner (murmur2 of the key), and waits until the broker has them all."""

    def __init__(self, producer: Producer, max_request_size: int = MAX_REQUEST_BYTES) -> None:
        self.producer = producer
        self.max_request_size = max_request_size
        self._partitions: dict[str, list[int]] = {}
        self._spread = 0

    async def send_all(self, records: Iterable[Record]) -> list[Refused]:
        """Send every record and wait for the broker; returns those refused for good.

        Raises `ProduceUnavailableError` if a record failed for a reason that may pass.
        """
        items = list(records)
        refused: list[Refused] = []
        # Each queued future with the indexes of the records it carries.
        queued: list[tuple[asyncio.Future[Any], list[int]]] = []
        builders: dict[tuple[str, int], tuple[Any, list[int]]] = {}
        placed: dict[tuple[str, bytes | None], int] = {}
        for index, (topic, key, value) in enumerate(items):
            size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, [])
            if size > self.max_request_size:
                # Checked here, not left to the broker: a broker refusal fails every record
                # batched with this one.
                refused.append(Refused(index, _too_large(size, self.max_request_size)))
                continue
            try:
                partition = placed.get((topic, key))
                if partition is None:
                    partition = await self._partition(topic, key)
                    if key is not None:
                        placed[(topic, key)] = partition
            except KafkaError as exc:  # e.g. an invalid topic name
                _raise_unless_permanent(exc)
                refused.append(Refused(index, exc))
                continue
            slot = (topic, partition)
            builder, members = builders.get(slot) or self._new_builder(builders, slot)
            if builder.append(key=key, value=value, timestamp=None) is None:
                # Full (an empty builder takes any first record, whatever its size).
                queued.append((await self._submit(builder, slot), members))
                builder, members = self._new_builder(builders, slot)
                builder.append(key=key, value=value, timestamp=None)
            members.append(index)
        for slot, (builder, members) in builders.items():
            if members:
                queued.append((await self._submit(builder, slot), members))
        await self._settle(items, queued, refused, placed)
        return sorted(refused, key=lambda r: r.index)

    async def _settle(
        self,
        items: list[Record],
        queued: list[tuple[asyncio.Future[Any], list[int]]],
        refused: list[Refused],
        placed: dict[tuple[str, bytes | None], int],
    ) -> None:
        """Wait for every future; a refused batch is retried record by record."""
        outcomes = await asyncio.gather(*(f for f, _ in queued), return_exceptions=True)
        retry: list[tuple[asyncio.Future[Any], list[int]]] = []
        for outcome, (_, members) in zip(outcomes, queued, strict=True):
            if not isinstance(outcome, BaseException):
                continue
            _raise_unless_permanent(outcome)
            if len(members) == 1:
                refused.append(Refused(members[0], outcome))
                continue
            # The broker refused the whole batch (e.g. larger than the topic's
            # max.message.bytes): find out which records it minds by sending each alone,
            # each in a batch of its own (`send` would batch them together again).
            for index in members:
                topic, key, value = items[index]
                partition = placed.get((topic, key))
                if partition is None:
                    partition = await self._partition(topic, key)
                slot = (topic, partition)
                builder = self.producer.create_batch()
                builder.append(key=key, value=value, timestamp=None)
                retry.append((await self._submit(builder, slot), [index]))
        if retry:
            await self._settle(items, retry, refused, placed)

    async def _submit(self, builder: Any, slot: tuple[str, int]) -> asyncio.Future[Any]:
        try:
            future: asyncio.Future[Any] = await self.producer.send_batch(
                builder, slot[0], partition=slot[1]
            )
        except KafkaError as exc:
            # Queueing itself failed: report it through the future, sorted like a refusal.
            _raise_unless_permanent(exc)
            future = asyncio.get_running_loop().create_future()
            future.set_exception(exc)
        return future

    def _new_builder(
        self, builders: dict[tuple[str, int], tuple[Any, list[int]]], slot: tuple[str, int]
    ) -> tuple[Any, list[int]]:
        entry = builders[slot] = (self.producer.create_batch(), [])
        return entry

    async def _partition(self, topic: str, key: bytes | None) -> int:
        partitions = self._partitions.get(topic)
        if partitions is None:
            found = await self.producer.partitions_for(topic)
            partitions = self._partitions[topic] = sorted(found)
        if key is None:  # no order to keep: spread keyless records round-robin
            self._spread += 1
            return partitions[self._spread % len(partitions)]
        index: int = murmur2(key) & 0x7FFFFFFF
        return partitions[index % len(partitions)]


def _too_large(size: int, limit: int) -> MessageSizeTooLargeError:
    return MessageSizeTooLargeError(
        f"the record is {size} bytes serialized, over the producer's max_request_size of "
        f"{limit} bytes"
    )


# Not a verdict on the record but on the producer's state: an idempotent producer's sequence
# for a partition breaks once the broker refuses one of its batches, and every later batch to
# that partition fails with these. Dead-lettering on them would discard valid records.
_PRODUCER_STATE_ERRORS = (
    OutOfOrderSequenceNumber,
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    UnknownProducerId,
    ProducerFenced,
)


def _raise_unless_permanent(error: BaseException) -> None:
    """Re-raise what retrying may fix; return for a Kafka error that retrying cannot fix."""
    if isinstance(error, _PRODUCER_STATE_ERRORS):
        raise ProduceUnavailableError(
            f"the producer can no longer produce ({type(error).__name__}: {error}); restart "
            "the worker (a new producer) and check that no topic's max.message.bytes is "
            "below the producer's max_request_size (1048576)"
        ) from error
    if isinstance(error, KafkaError):
        if getattr(error, "retriable", False):
            raise ProduceUnavailableError(
                f"the broker did not take the batch's records ({type(error).__name__}: "
                f"{error}); nothing was committed, so retrying the batch is safe: check that "
                "Kafka is reachable and the topics' partitions have leaders"
            ) from error
        return
    # Not a broker verdict on a record (a bug, a cancelled wait, a lost connection): the
    # caller's usual failure handling applies.
    raise error
