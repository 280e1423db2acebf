"""The compacted `journeys` topic: one record per journey holding every deployed version.

Workers replay it at start and follow it to hot-reload; the CLI appends to it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition

from orchestrator.contracts.base import ContractError
from orchestrator.contracts.deploys import DeployRecord
from orchestrator.contracts.schemas import read_record
from orchestrator.engine.catalog import Catalog, DeployedJourney
from orchestrator.errors import JourneyValidationError
from orchestrator.infra.outage import Health, StoppedWhileWaitingError, ride_out
from orchestrator.infra.topics import partitions_of
from orchestrator.journey.loader import compile_source
from orchestrator.journey.plan import CompiledJourney

__all__ = ["CatalogFollower", "JourneyRecords", "compile_record", "read_deploy_log"]

log = logging.getLogger(__name__)

JourneyRecords = dict[str, DeployRecord]


def compile_record(
    record: DeployRecord, cache: dict[str, CompiledJourney] | None = None
) -> DeployedJourney:
    """Compile every version in a deploy record (reusing `cache`, keyed by digest+version)."""
    versions: dict[int, CompiledJourney] = {}
    for key, entry in record.versions.items():
        version = int(key)
        cache_key = f"{entry.digest}:{version}"
        compiled = cache.get(cache_key) if cache is not None else None
        if compiled is None:
            compiled = compile_source(entry.source.to_source(), version)
            if cache is not None:
                cache[cache_key] = compiled
        versions[version] = compiled
    return DeployedJourney(versions=versions, current=record.current, status=record.status)


class CatalogFollower:
    """Follows the deploy log and keeps an up-to-date catalog for the engine."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.bootstrap = bootstrap
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            group_id=None,
        )
        self._records: JourneyRecords = {}
        self._cache: dict[str, CompiledJourney] = {}
        self._catalog: dict[str, DeployedJourney] = {}
        self._consumer_started = False
        self._assigned: list[TopicPartition] = []

    @property
    def catalog(self) -> Catalog:
        """The latest catalog (replaced, never mutated, so a batch sees one consistent view)."""
        return self._catalog

    @property
    def records(self) -> JourneyRecords:
        """The deploy records by journey id."""
        return self._records

    async def start(self) -> None:
        """Replay the log to its end, so the catalog is complete before events are applied.

        May be called again after it failed (the worker retries it while Kafka is away).
        """
        if not self._consumer_started:
            await self._consumer.start()
            self._consumer_started = True
        partitions = await partitions_of(self.bootstrap, self.topic) or [0]
        self._assigned = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self._consumer.assign(self._assigned)
        self._consumer.pause(*self._assigned)
        await self._consumer.seek_to_beginning(*self._assigned)
        await self.catch_up()

    async def catch_up(self) -> None:
        """Read what was appended since the last read, up to the log's current end (after
        `start`): a long-lived reader sees every deploy made before the call, at the cost of
        the new records only.

        The partitions stay paused between calls (until `follow`): a fetch waiting at the
        log's end for new records (up to half a second) would hold up the next call's
        end-offsets request, which shares its connection to the broker, so every API read
        of the journeys took half a second.
        """
        ends = await self._consumer.end_offsets(self._assigned)
        if await self._caught_up(ends):
            return
        self._consumer.resume(*self._assigned)
        try:
            while not await self._caught_up(ends):
                await self._poll(timeout_ms=500)
        finally:
            self._consumer.pause(*self._assigned)

    async def _caught_up(self, ends: Mapping[TopicPartition, int]) -> bool:
        for tp, end in ends.items():
            if await self._consumer.position(tp) < end:
                return False
        return True

    async def follow(self, stopping: asyncio.Event, health: Health) -> None:
        """Apply new deploy records as they arrive, until `stopping` is set (run as a task).

        Kafka trouble is waited out with backoff (reported to `health`), not fatal.
        """
        self._consumer.resume(*self._assigned)
        while not stopping.is_set():
            try:
                await ride_out(
                    lambda: self._poll(timeout_ms=1000),
                    health=health,
                    stopping=stopping,
                    what="following the deploy log",
                )
            except StoppedWhileWaitingError:
                return

    async def stop(self) -> None:
        """Stop consuming."""
        await self._consumer.stop()

    async def _poll(self, timeout_ms: int) -> None:
        batches = await self._consumer.getmany(timeout_ms=timeout_ms)
        changed = False
        for messages in batches.values():
            for message in messages:
                changed |= self._apply(message.key, message.value)
        if changed:
            self._rebuild()

    def _apply(self, key: bytes | None, value: bytes | None) -> bool:
        if key is None:
            return False
        journey = key.decode()
        if value is None:
            return self._records.pop(journey, None) is not None
        try:
            record: DeployRecord = read_record("journeys", value)
        except ContractError as exc:
            # Keep what was there: the journey's last readable record stays in force.
            log.error("ignoring unreadable deploy record for %s: %s", journey, exc)
            return False
        self._records[journey] = record
        return True

    def _rebuild(self) -> None:
        catalog: dict[str, DeployedJourney] = {}
        for journey, record in self._records.items():
            try:
                catalog[journey] = compile_record(record, self._cache)
            except (JourneyValidationError, KeyError, ValueError, TypeError) as exc:
                log.error("cannot load journey %s from the deploy log: %s", journey, exc)
                if journey in self._catalog:
                    catalog[journey] = self._catalog[journey]
        self._catalog = catalog
        log.info("catalog now has %d journeys", len(catalog))


async def read_deploy_log(bootstrap: str, topic: str) -> JourneyRecords:
    """The current deploy records, read once to the end of the log."""
    follower = CatalogFollower(bootstrap, topic)
    try:
        await asyncio.wait_for(follower.start(), timeout=30)
        return dict(follower.records)
    finally:
        await follower.stop()
