"""`orchestrator audit-sink`: the `interactions` topic into the audit store, exactly once.

The sink joins no consumer group: it assigns itself the partitions of its shard
(`ORCHESTRATOR_AUDIT_SINK_SHARD` or `--shard I/N`: those with p % N == I; `0/1`, every
partition, by default) and seeks each to the next offset stored in the database (the
beginning if none), because the offsets that count are the ones committed in the same
transaction as the records (`store.py`). Several sinks, one per shard, store the topic
between them; a shard's layout may change between runs (each partition's offset is its own
row), and two sinks that own the same partition at once cannot both store it (`offsets.py`).
It rides out PostgreSQL and Kafka outages like the journey worker: a batch is retried with
backoff until it commits, and never skipped. Every `ORCHESTRATOR_AUDIT_CHECKPOINT_S` seconds
it checkpoints the chain heads that moved.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer, TopicPartition

from orchestrator.audit.checkpoint import take_checkpoint
from orchestrator.audit.db import DatabaseUnavailableError, connect, require_schema
from orchestrator.audit.offsets import stored_offsets
from orchestrator.audit.personal import PersonalFields
from orchestrator.audit.projection import Projection
from orchestrator.audit.store import (
    BatchResult,
    DecodedBatch,
    SourceRecord,
    commit_batch,
    decode_batch,
)
from orchestrator.errors import ConfigurationError
from orchestrator.infra.names import TopicNames
from orchestrator.infra.outage import Health, ride_out, wait_until_up
from orchestrator.infra.settings import Settings, redacted_url
from orchestrator.infra.shard import PartitionShard
from orchestrator.infra.topics import ensure_topics, partitions_of

__all__ = ["AuditSink"]

log = logging.getLogger(__name__)

_POLL_MS = 200


class AuditSink:
    """Reads `interactions` in batches and commits each batch with its offsets."""

    def __init__(self, settings: Settings, projections: Sequence[Projection] = ()) -> None:
        self.settings = settings
        # Kept current in each batch's transaction (`projection.py`).
        self.projections = tuple(projections)
        self.topic = TopicNames(settings.topic_prefix).interactions
        self.shard = PartitionShard.parse(settings.audit_sink_shard)
        self.personal = PersonalFields.from_setting(settings.audit_personal_fields)
        self.health = Health(
            {
                "kafka": settings.kafka_bootstrap,
                "redis": settings.redis_url,
                "postgres": redacted_url(settings.database_url),
            }
        )
        self.stored = 0
        self.duplicates = 0
        self.rejected = 0
        self._stopping = asyncio.Event()
        self._conn: psycopg.AsyncConnection[tuple[Any, ...]] | None = None
        self._consumer: AIOKafkaConsumer | None = None
        # The next offset stored for each owned partition, as this sink last stored it.
        self._offsets: dict[int, int] = {}

    async def __aenter__(self) -> AuditSink:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def stop(self) -> None:
        """Ask `run` to return after the batch in hand (idempotent)."""
        self._stopping.set()

    async def start(self) -> None:
        """Wait for PostgreSQL (with the schema applied) and Kafka, then seek to stored offsets."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.startup_timeout_s
        await wait_until_up(
            self._connection, dependency="postgres", health=self.health,
            deadline=deadline, stopping=self._stopping,
        )  # fmt: skip
        await require_schema(await self._connection())
        await wait_until_up(
            lambda: ensure_topics(self.settings), dependency="kafka", health=self.health,
            deadline=deadline, stopping=self._stopping,
        )  # fmt: skip
        partitions = await partitions_of(self.settings.kafka_bootstrap, self.topic)
        owned = self.shard.of(partitions)
        if not owned:
            raise ConfigurationError(
                f"audit sink shard {self.shard} owns no partition of {self.topic}, which has "
                f"{len(partitions)}: run at most {len(partitions)} sinks (N <= {len(partitions)} "
                "in --shard I/N or ORCHESTRATOR_AUDIT_SINK_SHARD)"
            )
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        self._consumer = consumer
        await wait_until_up(
            consumer.start, dependency="kafka", health=self.health,
            deadline=deadline, stopping=self._stopping,
        )  # fmt: skip
        assigned = [TopicPartition(self.topic, p) for p in owned]
        consumer.assign(assigned)
        stored = await stored_offsets(await self._connection(), self.topic)
        self._offsets = {p: offset for p, offset in stored.items() if p in owned}
        for tp in assigned:
            if tp.partition in self._offsets:
                consumer.seek(tp, self._offsets[tp.partition])
            else:
                await consumer.seek_to_beginning(tp)
        self.health.set_phase("healthy")
        log.info(
            "audit sink %s started on %s (partitions %s of %d, %d with stored offsets)",
            self.shard, self.topic, ",".join(map(str, owned)), len(partitions),
            len(self._offsets),
        )  # fmt: skip

    async def run(self) -> None:
        """Store batches until `stop()`; checkpoint chain heads on the way."""
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("AuditSink.run() before start()")
        loop = asyncio.get_running_loop()
        next_checkpoint = loop.time() + self.settings.audit_checkpoint_s
        fetching = asyncio.create_task(self._fetch(consumer))
        try:
            while not self._stopping.is_set():
                batch = await fetching
                # The next batch is read and decoded while this one commits; records read
                # but not stored when the sink stops are read again from the stored offsets.
                fetching = asyncio.create_task(self._fetch(consumer))
                if batch.sources:
                    result = await ride_out(
                        functools.partial(self._write, batch), health=self.health,
                        stopping=self._stopping, what="storing a batch of interaction records",
                    )  # fmt: skip
                    self.stored += result.stored
                    self.duplicates += result.duplicates
                    self.rejected += result.rejected
                if loop.time() >= next_checkpoint:
                    await ride_out(
                        self._checkpoint, health=self.health, stopping=self._stopping,
                        what="checkpointing chain heads",
                    )  # fmt: skip
                    next_checkpoint = loop.time() + self.settings.audit_checkpoint_s
        finally:
            # The batch read ahead is dropped (read again from the stored offsets), and so is
            # whatever went wrong reading it: the error that ended the loop is the one to see.
            fetching.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await fetching
        # A clean stop leaves a checkpoint of everything stored, if the database lets it.
        try:
            await self._checkpoint()
        except DatabaseUnavailableError as exc:
            log.warning("no checkpoint at stop: %s", exc)
        log.info(
            "audit sink stopped: %d stored, %d duplicates skipped, %d rejected",
            self.stored, self.duplicates, self.rejected,
        )  # fmt: skip

    async def close(self) -> None:
        """Close the consumer and the connection (idempotent)."""
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _connection(self) -> psycopg.AsyncConnection[tuple[Any, ...]]:
        """The open connection, reconnecting after one was lost."""
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = await connect(self.settings.database_url)
        return self._conn

    async def _fetch(self, consumer: AIOKafkaConsumer) -> DecodedBatch:
        """The next batch from the topic (empty after a quiet poll), decoded."""
        fetched = await consumer.getmany(
            timeout_ms=_POLL_MS, max_records=self.settings.audit_batch_max
        )
        return await decode_batch(
            [
                SourceRecord(message.partition, message.offset, message.value)
                for messages in fetched.values()
                for message in messages
            ]
        )

    async def _write(self, batch: DecodedBatch) -> BatchResult:
        """The one place a batch is written: its records, heads and offsets in one transaction."""
        try:
            result = await commit_batch(
                await self._connection(), self.topic, batch, self.personal, self._offsets,
                projections=self.projections,
            )  # fmt: skip
        except psycopg.OperationalError as exc:
            # Connection lost, server shutting down, deadlock or serialization failure:
            # the transaction rolled back, so the whole batch is retried.
            raise DatabaseUnavailableError(" ".join(str(exc).split())) from exc
        self._offsets.update(result.next_offsets)
        return result

    async def _checkpoint(self) -> None:
        try:
            checkpoint = await take_checkpoint(await self._connection())
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailableError(" ".join(str(exc).split())) from exc
        if checkpoint is not None:
            log.info(
                "checkpoint %d: %d chain heads, digest %s",
                checkpoint.checkpoint_id, checkpoint.chains, checkpoint.digest.hex(),
            )  # fmt: skip
