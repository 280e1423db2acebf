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
from collections.abc import Awaitable, Callable, Iterable
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
    "Limits",
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


class Limits(Protocol):
    """Per-topic batch limits (`TopicLimits`), re-read after a refusal."""

    def limit(self, topic: str) -> int:
        """The largest record batch, header included, `topic` takes."""
        ...

    async def refresh(self) -> None:
        """Re-read the limits from the broker."""
        ...


# A v2 record batch's header, and the most a record adds besides its key and value (length,
# attributes, timestamp and offset deltas as varints): aiokafka's `estimate_size_in_bytes`
# is the sum of both and the record's key and value.
_BATCH_HEADER_BYTES = 61
_OpenBatch = tuple[Any, list[int], int]  # builder, member indexes, bytes used at most


class RecordBatcher:
    """Sends (topic, key, value) records through one producer, partitioned like Kafka's
    default partitioner (murmur2 of the key), and waits until the broker has them all.

    With `limits`, each topic's batches stay within its limit (and `max_request_size`), so
    the broker never refuses one for its size, and a record too large alone is refused up
    front. With `renew`, a refusal that happens anyway (a limit lowered since last read)
    renews the producer, whose sequence it broke, before the records are sent again.
    """

    def __init__(
        self,
        producer: Producer,
        max_request_size: int = MAX_REQUEST_BYTES,
        *,
        limits: Limits | None = None,
        renew: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.producer = producer
        self.max_request_size = max_request_size
        self.limits = limits
        self.renew = renew
        self._partitions: dict[str, list[int]] = {}
        self._spread = 0

    def limit(self, topic: str) -> int:
        """The largest batch to build for `topic`."""
        if self.limits is None:
            return self.max_request_size
        return min(self.max_request_size, self.limits.limit(topic))

    async def send_all(self, records: Iterable[Record]) -> list[Refused]:
        """Send every record and wait for the broker; returns those refused for good.

        Raises `ProduceUnavailableError` if a record failed for a reason that may pass.
        """
        items = list(records)
        refused: list[Refused] = []
        placed: dict[tuple[str, bytes | None], int] = {}
        todo, alone, renewals = list(range(len(items))), False, 0
        while todo:
            queued = await self._queue(items, todo, refused, placed, alone=alone)
            todo, broken = await self._settle(queued, refused)
            if broken:
                renewals += 1
                if renewals > len(items) + 1:  # each round settles a record; this one did not
                    raise ProduceUnavailableError(
                        "the broker keeps refusing a new producer's batches; check the topics' "
                        "max.message.bytes and the broker log"
                    )
                await self._recover()
            # Whatever is sent again goes alone: a batch the broker refused is retried record
            # by record to find the ones it minds.
            alone = True
        return sorted(refused, key=lambda r: r.index)

    async def _queue(
        self,
        items: list[Record],
        indexes: list[int],
        refused: list[Refused],
        placed: dict[tuple[str, bytes | None], int],
        *,
        alone: bool,
    ) -> list[tuple[asyncio.Future[Any], list[int]]]:
        """Check, place and batch the records at `indexes`; returns the queued futures with
        the indexes each carries. Records refused before sending go to `refused`."""
        queued: list[tuple[asyncio.Future[Any], list[int]]] = []
        builders: dict[tuple[str, int], _OpenBatch] = {}
        for index in indexes:
            topic, key, value = items[index]
            size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, [])
            limit = self.limit(topic)
            if size > limit:
                # Checked here, not left to the broker: a broker refusal fails every record
                # batched with this one, and breaks an idempotent producer's sequence.
                refused.append(Refused(index, _too_large(size, limit, self.max_request_size)))
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
            builder, members, used = builders.get(slot) or self._new_builder(builders, slot)
            # An upper bound of what the record adds to the batch; `size` counts the header.
            adds = size - _BATCH_HEADER_BYTES
            if members and (alone or used + adds > limit):
                queued.append((await self._submit(builder, slot), members))
                builder, members, used = self._new_builder(builders, slot)
            if builder.append(key=key, value=value, timestamp=None) is None:
                # The builder's own size is full (an empty one takes any first record).
                queued.append((await self._submit(builder, slot), members))
                builder, members, used = self._new_builder(builders, slot)
                builder.append(key=key, value=value, timestamp=None)
            members.append(index)
            builders[slot] = (builder, members, used + adds)
        for slot, (builder, members, _) in builders.items():
            if members:
                queued.append((await self._submit(builder, slot), members))
        return queued

    async def _settle(
        self, queued: list[tuple[asyncio.Future[Any], list[int]]], refused: list[Refused]
    ) -> tuple[list[int], bool]:
        """Wait for every future. Returns the records to send again, and whether the producer
        needs renewing (the broker refused a batch, or the producer's sequence is broken)."""
        outcomes = await asyncio.gather(*(f for f, _ in queued), return_exceptions=True)
        again: list[int] = []
        broken = False
        for outcome, (_, members) in zip(outcomes, queued, strict=True):
            if not isinstance(outcome, BaseException):
                continue
            if isinstance(outcome, _PRODUCER_STATE_ERRORS) and self.renew is not None:
                # Not written (the broker refuses out-of-sequence batches): resend them on
                # a renewed producer.
                broken = True
                again.extend(members)
                continue
            _raise_unless_permanent(outcome)
            # A refusal: on an idempotent producer it broke the partition's sequence too.
            broken = True
            if len(members) == 1:
                refused.append(Refused(members[0], outcome))
            else:
                again.extend(members)
        return sorted(again), broken

    async def _recover(self) -> None:
        """After a refusal: re-read the limits (one may have been lowered), renew the producer."""
        if self.limits is not None:
            await self.limits.refresh()
        if self.renew is None:
            return
        try:
            await self.renew()
        except (KafkaError, OSError, OrchestratorError) as exc:
            raise ProduceUnavailableError(
                f"could not replace the producer after a refused batch ({exc}); nothing was "
                "committed, so retrying the batch is safe"
            ) from exc

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
        self, builders: dict[tuple[str, int], _OpenBatch], slot: tuple[str, int]
    ) -> _OpenBatch:
        entry = builders[slot] = (self.producer.create_batch(), [], _BATCH_HEADER_BYTES)
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


def _too_large(size: int, limit: int, max_request_size: int) -> MessageSizeTooLargeError:
    what = (
        "the producer's max_request_size"
        if limit >= max_request_size
        else "the topic's max.message.bytes"
    )
    return MessageSizeTooLargeError(
        f"the record is {size} bytes serialized, over {what} of {limit} bytes"
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
