"""Operator actions on deployed journeys: deploy, pause, resume, rollback, archive.

Each publishes the journey's new deploy record and an `operator` interaction record.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from redis.exceptions import LockError

from orchestrator import jsonwire
from orchestrator.contracts.deploys import (
    DeployRecord,
    OperatorAction,
    SourceRecord,
    VersionEntry,
)
from orchestrator.contracts.interactions import OperatorInteraction
from orchestrator.contracts.recording import operator_interaction
from orchestrator.control.publisher import EventPublisher
from orchestrator.engine.catalog import JourneyStatus
from orchestrator.engine.events import JOURNEY_ARCHIVED, Event
from orchestrator.errors import JourneyValidationError, OrchestratorError
from orchestrator.infra.clock import Clock
from orchestrator.infra.deploylog import JourneyRecords, read_deploy_log
from orchestrator.infra.names import RedisKeys, TopicNames
from orchestrator.infra.origin import EngineOrigin
from orchestrator.infra.redisclient import connect_redis
from orchestrator.infra.settings import Settings
from orchestrator.journey.loader import validate_sources
from orchestrator.journey.plan import CompiledJourney
from orchestrator.journey.source import JourneySource
from orchestrator.timefmt import format_instant

__all__ = [
    "DEPLOY_RECORD_MAX_BYTES",
    "DeployOutcome",
    "JourneyOperations",
    "OperationInProgressError",
    "UnknownJourneyError",
]

# One deploy record holds every version of a journey (the compacted log keeps only the last).
DEPLOY_RECORD_MAX_BYTES = 16 * 1024 * 1024
# An operator action holds the lock at most this long (a crashed CLI frees it by expiry)...
_LOCK_LEASE_SECONDS = 120.0
# ...and waits this long for another one to finish before giving up.
_LOCK_WAIT_SECONDS = 150.0


class UnknownJourneyError(OrchestratorError):
    """The named journey (or version) was never deployed."""


class OperationInProgressError(OrchestratorError):
    """Another operator action on the same deployment did not finish in time."""


@dataclass(frozen=True, slots=True)
class DeployOutcome:
    """What a deploy did to one journey."""

    journey: str
    version: int
    changed: bool


class JourneyOperations:
    """Reads the deploy log and appends operator actions to it."""

    def __init__(
        self,
        settings: Settings,
        operator: str | None = None,
        lock_wait: float = _LOCK_WAIT_SECONDS,
    ) -> None:
        self.settings = settings
        self.lock_wait = lock_wait
        self.topics = TopicNames(settings.topic_prefix)
        self.operator = operator or settings.operator
        self.clock = Clock(settings.clock_speed, settings.clock_origin)

    async def records(self) -> dict[str, dict[str, Any]]:
        """Current deploy records by journey id, as the JSON objects the topic holds."""
        return {j: _as_json(r) for j, r in (await self.deploy_records()).items()}

    async def deploy_records(self) -> JourneyRecords:
        """Current deploy records by journey id."""
        return await read_deploy_log(self.settings.kafka_bootstrap, self.topics.journeys)

    async def deploy(self, sources: Sequence[JourneySource]) -> list[DeployOutcome]:
        """Validate all, then publish a new version of each journey whose content changed."""
        compiled, problems = validate_sources(sources)
        if problems:
            raise JourneyValidationError(problems)
        async with self._exclusive():
            return await self._deploy_compiled(compiled, sources)

    async def _deploy_compiled(
        self, compiled: Sequence[CompiledJourney], sources: Sequence[JourneySource]
    ) -> list[DeployOutcome]:
        records = await self.deploy_records()
        outcomes: list[DeployOutcome] = []
        updates: list[tuple[DeployRecord, OperatorInteraction]] = []
        for journey, full in zip(compiled, sources, strict=True):
            # Ship only the templates this journey uses: smaller records, and editing an
            # unrelated template does not make a new version.
            source = JourneySource(
                full.path, full.text, {n: full.templates[n] for n in sorted(journey.templates)}
            )
            record = records.get(journey.id)
            digest = source.digest()
            unchanged = record is not None and record.current_entry.digest == digest
            if record is not None and unchanged and record.status == "active":
                outcomes.append(DeployOutcome(journey.id, record.current, False))
                continue
            versions = dict(record.versions) if record is not None else {}
            version = max((int(v) for v in versions), default=0) + 1
            now = format_instant(self.clock.now())
            versions[str(version)] = VersionEntry(
                source=SourceRecord.of(source),
                digest=digest,
                deployed_at=now,
                operator=self.operator,
            )
            update = DeployRecord(
                journey=journey.id,
                versions=versions,
                current=version,
                status="active",
                updated_at=now,
                operator=self.operator,
                action=OperatorAction.DEPLOY,
            )
            updates.append((update, operator_interaction(update, version=version)))
            outcomes.append(DeployOutcome(journey.id, version, True))
        await self._publish(updates)
        return outcomes

    async def set_status(self, journey: str, status: JourneyStatus) -> dict[str, Any]:
        """Pause (`paused`), resume (`active`) or archive (`archived`) a journey.

        Returns the new deploy record as JSON, with `announced` (customers told) for archive.
        """
        async with self._exclusive():
            update = self._changed(await self._record(journey), _ACTION_OF[status], status=status)
            await self._publish([(update, operator_interaction(update, version=update.current))])
        result = _as_json(update)
        if status == "archived":
            result["announced"] = await self._announce_archive(journey)
        return result

    async def rollback(self, journey: str, version: int | None = None) -> dict[str, Any]:
        """Make an earlier version current again (default: the one before the current).

        Returns the new deploy record as JSON.
        """
        async with self._exclusive():
            record = await self._record(journey)
            known = record.version_numbers()
            current = record.current
            if version is None:
                earlier = [v for v in known if v < current]
                if not earlier:
                    raise UnknownJourneyError(
                        f"journey {journey!r} has no version before v{current} to roll back to"
                    )
                version = earlier[-1]
            if version not in known:
                raise UnknownJourneyError(
                    f"journey {journey!r} has no version {version}: "
                    f"deployed versions are {', '.join(map(str, known))}"
                )
            update = self._changed(record, OperatorAction.ROLLBACK, current=version)
            audit = operator_interaction(update, version=version, rolled_back_from=current)
            await self._publish([(update, audit)])
            return _as_json(update)

    async def live_stats(self, journey: str) -> tuple[dict[str, int], int]:
        """(counters, customers in the journey now) from Redis; counters are at-least-once."""
        keys = RedisKeys(self.settings.redis_prefix)
        redis = connect_redis(self.settings)
        try:
            raw = await redis.hgetall(keys.journey_stats(journey))
            active = int(await redis.scard(keys.journey_members(journey)))
        finally:
            await redis.aclose()
        counters = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}
        return dict(sorted(counters.items())), active

    @contextlib.asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[None]:
        """Serialise operator actions on this deployment.

        Each action reads the deploy log and writes it back; two at once would both write
        the same next version and the later record would silently win. The lock is a
        Redis lease, so a CLI killed mid-action frees it when the lease runs out.
        """
        redis = connect_redis(self.settings)
        lock = redis.lock(
            RedisKeys(self.settings.redis_prefix).operations_lock(),
            timeout=_LOCK_LEASE_SECONDS,
            blocking_timeout=self.lock_wait,
        )
        try:
            if not await lock.acquire():
                raise OperationInProgressError(
                    f"another deploy, pause, resume, rollback or archive on this deployment "
                    f"has held the lock for over {self.lock_wait:g} s; wait for it to "
                    "finish and run this command again"
                )
            try:
                yield
            finally:
                with contextlib.suppress(LockError):  # the lease ran out: nothing to free
                    await lock.release()
        finally:
            await redis.aclose()

    async def _record(self, journey: str) -> DeployRecord:
        records = await self.deploy_records()
        if journey not in records:
            known = ", ".join(sorted(records)) or "none yet"
            raise UnknownJourneyError(
                f"journey {journey!r} is not deployed (deployed: {known}); "
                "deploy it first with `orchestrator deploy FILE`"
            )
        return records[journey]

    def _changed(
        self,
        record: DeployRecord,
        action: OperatorAction,
        *,
        status: JourneyStatus | None = None,
        current: int | None = None,
    ) -> DeployRecord:
        """`record` after `action` by this operator, now."""
        return dataclasses.replace(
            record,
            status=record.status if status is None else status,
            current=record.current if current is None else current,
            updated_at=format_instant(self.clock.now()),
            operator=self.operator,
            action=action,
        )

    async def _publish(self, updates: Sequence[tuple[DeployRecord, OperatorInteraction]]) -> None:
        """Write each deploy record, then the operator record of the action that made it."""
        if not updates:
            return
        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            enable_idempotence=True,
            acks="all",
            max_request_size=DEPLOY_RECORD_MAX_BYTES,
        )
        await producer.start()
        try:
            for record, audit in updates:
                await producer.send_and_wait(
                    self.topics.journeys, record.to_json(), key=record.journey.encode()
                )
                await producer.send_and_wait(
                    self.topics.interactions,
                    audit.to_json(),
                    key=f"journey:{record.journey}".encode(),
                )
        finally:
            await producer.stop()

    async def _announce_archive(self, journey: str) -> int:
        """Send `journey.archived` to every customer in the journey so instances end now."""
        keys = RedisKeys(self.settings.redis_prefix)
        redis = connect_redis(self.settings)
        now = self.clock.now()
        at = format_instant(now)
        count = 0
        try:
            # Workers apply `journey.archived` only with the engine's proof of origin.
            origin = EngineOrigin(self.settings.engine_key)
            await origin.load(redis, keys)
            async with EventPublisher(self.settings, origin) as publisher:
                async for member in redis.sscan_iter(keys.journey_members(journey), count=1000):
                    customer = member.decode()
                    count += await publisher.publish(
                        [
                            Event(
                                f"archive:{journey}:{customer}:{at}",
                                customer,
                                JOURNEY_ARCHIVED,
                                now,
                                None,
                                {"journey": journey},
                            )
                        ]
                    )
        finally:
            await redis.aclose()
        return count


# The operator action that sets a journey's status.
_ACTION_OF: dict[JourneyStatus, OperatorAction] = {
    "paused": OperatorAction.PAUSE,
    "active": OperatorAction.RESUME,
    "archived": OperatorAction.ARCHIVE,
}


def _as_json(record: DeployRecord) -> dict[str, Any]:
    """A record as the plain JSON object the topic holds (what the CLI prints from)."""
    result: dict[str, Any] = jsonwire.loads(record.to_json())
    return result
