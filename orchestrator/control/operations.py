"""Operator actions on deployed journeys: deploy, pause, resume, rollback, archive.

Each publishes the journey's new deploy record and an `operator` interaction record.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from redis.exceptions import LockError

from orchestrator import jsonwire
from orchestrator.control.publisher import EventPublisher
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

    async def records(self) -> JourneyRecords:
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
        records = await self.records()
        outcomes: list[DeployOutcome] = []
        updates: list[dict[str, Any]] = []
        for journey, full in zip(compiled, sources, strict=True):
            # Ship only the templates this journey uses: smaller records, and editing an
            # unrelated template does not make a new version.
            source = JourneySource(
                full.path, full.text, {n: full.templates[n] for n in sorted(journey.templates)}
            )
            record = records.get(journey.id)
            digest = source.digest()
            if record is not None:
                current = record["versions"][str(record["current"])]
                if current["digest"] == digest and record["status"] == "active":
                    outcomes.append(DeployOutcome(journey.id, int(record["current"]), False))
                    continue
            record = record or {"journey": journey.id, "versions": {}}
            version = max((int(v) for v in record["versions"]), default=0) + 1
            record["versions"][str(version)] = {
                "source": source.to_wire(),
                "digest": digest,
                "deployed_at": format_instant(self.clock.now()),
                "operator": self.operator,
            }
            record.update(current=version, status="active")
            updates.append(self._stamp(record, "deploy", version=version, digest=digest))
            outcomes.append(DeployOutcome(journey.id, version, True))
        await self._publish(updates)
        return outcomes

    async def set_status(self, journey: str, status: str) -> dict[str, Any]:
        """Pause (`paused`), resume (`active`) or archive (`archived`) a journey."""
        async with self._exclusive():
            record = await self._record(journey)
            action = {"paused": "pause", "active": "resume", "archived": "archive"}[status]
            record["status"] = status
            update = self._stamp(record, action, version=int(record["current"]))
            await self._publish([update])
        if status == "archived":
            update["announced"] = await self._announce_archive(journey)
        return update

    async def rollback(self, journey: str, version: int | None = None) -> dict[str, Any]:
        """Make an earlier version current again (default: the one before the current)."""
        async with self._exclusive():
            record = await self._record(journey)
            known = sorted(int(v) for v in record["versions"])
            current = int(record["current"])
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
            record["current"] = version
            update = self._stamp(record, "rollback", version=version, rolled_back_from=current)
            await self._publish([update])
            return update

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

    async def _record(self, journey: str) -> dict[str, Any]:
        records = await self.records()
        if journey not in records:
            known = ", ".join(sorted(records)) or "none yet"
            raise UnknownJourneyError(
                f"journey {journey!r} is not deployed (deployed: {known}); "
                "deploy it first with `orchestrator deploy FILE`"
            )
        return records[journey]

    def _stamp(self, record: dict[str, Any], action: str, **details: Any) -> dict[str, Any]:
        record["updated_at"] = format_instant(self.clock.now())
        record["operator"] = self.operator
        record["action"] = action
        record["_details"] = details
        return record

    async def _publish(self, records: Sequence[dict[str, Any]]) -> None:
        if not records:
            return
        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            enable_idempotence=True,
            acks="all",
            max_request_size=DEPLOY_RECORD_MAX_BYTES,
        )
        await producer.start()
        try:
            for record in records:
                details = record.pop("_details")
                await producer.send_and_wait(
                    self.topics.journeys, jsonwire.dumps(record), key=record["journey"].encode()
                )
                current = record["versions"][str(record["current"])]
                audit = {
                    "record_id": f"op:{uuid.uuid4().hex}",
                    "type": "operator",
                    "action": record["action"],
                    "at": record["updated_at"],
                    "operator": self.operator,
                    "journey": record["journey"],
                    "status": record["status"],
                    "digest": current["digest"],
                    **details,
                }
                await producer.send_and_wait(
                    self.topics.interactions,
                    jsonwire.dumps(audit),
                    key=f"journey:{record['journey']}".encode(),
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
