"""Operator actions on deployed journeys: deploy, pause, resume, rollback, archive.

Each publishes the journey's new deploy record and an `operator` interaction record.

`async with JourneyOperations(settings) as ops:` keeps one Redis client and one producer
for the block (a long-lived process, such as the HTTP API, holds one for its life); a call
outside such a block opens what it needs and closes it before returning (the CLI's one-shot
commands).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

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
from orchestrator.control.connections import SharedConnections
from orchestrator.control.publisher import EventPublisher
from orchestrator.engine.catalog import JourneyStatus
from orchestrator.engine.events import JOURNEY_ARCHIVED, Event
from orchestrator.errors import JourneyValidationError, OrchestratorError
from orchestrator.infra.clock import ScaledClock
from orchestrator.infra.deploylog import JourneyRecords, read_deploy_log
from orchestrator.infra.names import RedisKeys, TopicNames
from orchestrator.infra.origin import EngineOrigin
from orchestrator.infra.redisclient import RedisClient
from orchestrator.infra.settings import Settings
from orchestrator.journey.loader import validate_sources
from orchestrator.journey.plan import CompiledJourney
from orchestrator.journey.source import JourneySource
from orchestrator.timefmt import format_instant

__all__ = [
    "DeployOutcome",
    "JourneyOperations",
    "OperationInProgressError",
    "UnknownJourneyError",
]

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
    """Reads the deploy log and appends operator actions to it.

    Use it in `async with` to share one Redis client and one producer between calls; called
    outside one, each call opens and closes its own. Actions are recorded under `operator`
    unless a call names another (the API: one instance for the process, each caller named).
    """

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
        self.keys = RedisKeys(settings.redis_prefix)
        self.clock = ScaledClock(settings.clock_speed, settings.clock_origin)
        self._held: SharedConnections | None = None

    async def __aenter__(self) -> JourneyOperations:
        self._held = SharedConnections(self.settings)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        held, self._held = self._held, None
        if held is not None:
            await held.close()

    @contextlib.asynccontextmanager
    async def _connections(self) -> AsyncIterator[SharedConnections]:
        """The block's connections inside `async with`; otherwise ones for this call only."""
        if self._held is not None:
            yield self._held
            return
        own = SharedConnections(self.settings)
        try:
            yield own
        finally:
            await own.close()

    async def records(self) -> dict[str, dict[str, Any]]:
        """Current deploy records by journey id, as the JSON objects the topic holds."""
        return {j: _as_json(r) for j, r in (await self.deploy_records()).items()}

    async def deploy_records(self) -> JourneyRecords:
        """Current deploy records by journey id (read to the log's end at the call)."""
        if self._held is not None:
            return await self._held.deploy_records()
        return await read_deploy_log(self.settings.kafka_bootstrap, self.topics.journeys)

    async def deploy(
        self, sources: Sequence[JourneySource], operator: str | None = None
    ) -> list[DeployOutcome]:
        """Validate all, then publish a new version of each journey whose content changed."""
        compiled, problems = validate_sources(sources)
        if problems:
            raise JourneyValidationError(problems)
        async with self._connections() as connections, self._exclusive(connections):
            return await self._deploy_compiled(
                connections, compiled, sources, operator or self.operator
            )

    async def _deploy_compiled(
        self,
        connections: SharedConnections,
        compiled: Sequence[CompiledJourney],
        sources: Sequence[JourneySource],
        operator: str,
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
                operator=operator,
            )
            update = DeployRecord(
                journey=journey.id,
                versions=versions,
                current=version,
                status="active",
                updated_at=now,
                operator=operator,
                action=OperatorAction.DEPLOY,
            )
            updates.append((update, operator_interaction(update, version=version)))
            outcomes.append(DeployOutcome(journey.id, version, True))
        await self._publish(connections, updates)
        return outcomes

    async def set_status(
        self, journey: str, status: JourneyStatus, operator: str | None = None
    ) -> dict[str, Any]:
        """Pause (`paused`), resume (`active`) or archive (`archived`) a journey.

        Returns the new deploy record as JSON, with `announced` (customers told) for archive.
        """
        async with self._connections() as connections:
            async with self._exclusive(connections):
                update = self._changed(
                    await self._record(journey),
                    _ACTION_OF[status],
                    operator or self.operator,
                    status=status,
                )
                audit = operator_interaction(update, version=update.current)
                await self._publish(connections, [(update, audit)])
            result = _as_json(update)
            if status == "archived":
                result["announced"] = await self._announce_archive(connections, journey)
        return result

    async def rollback(
        self, journey: str, version: int | None = None, operator: str | None = None
    ) -> dict[str, Any]:
        """Make an earlier version current again (default: the one before the current).

        Returns the new deploy record as JSON.
        """
        async with self._connections() as connections, self._exclusive(connections):
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
            update = self._changed(
                record, OperatorAction.ROLLBACK, operator or self.operator, current=version
            )
            audit = operator_interaction(update, version=version, rolled_back_from=current)
            await self._publish(connections, [(update, audit)])
            return _as_json(update)

    @contextlib.asynccontextmanager
    async def redis_session(self) -> AsyncIterator[RedisClient]:
        """The Redis client for a block of reads (the shared one inside `async with`)."""
        async with self._connections() as connections:
            yield connections.redis()

    async def live_stats(self, journey: str) -> tuple[dict[str, int], int]:
        """(counters, customers in the journey now) from Redis; counters are at-least-once."""
        async with self.redis_session() as redis:
            raw = await redis.hgetall(self.keys.journey_stats(journey))
            active = int(await redis.scard(self.keys.journey_members(journey)))
        counters = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}
        return dict(sorted(counters.items())), active

    @contextlib.asynccontextmanager
    async def _exclusive(self, connections: SharedConnections) -> AsyncIterator[None]:
        """Serialise operator actions on this deployment.

        Each action reads the deploy log and writes it back; two at once would both write
        the same next version and the later record would silently win. The lock is a
        Redis lease, so a CLI killed mid-action frees it when the lease runs out.
        """
        lock = connections.redis().lock(
            self.keys.operations_lock(),
            timeout=_LOCK_LEASE_SECONDS,
            blocking_timeout=self.lock_wait,
        )
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
        operator: str,
        *,
        status: JourneyStatus | None = None,
        current: int | None = None,
    ) -> DeployRecord:
        """`record` after `action` by `operator`, now."""
        return dataclasses.replace(
            record,
            status=record.status if status is None else status,
            current=record.current if current is None else current,
            updated_at=format_instant(self.clock.now()),
            operator=operator,
            action=action,
        )

    async def _publish(
        self,
        connections: SharedConnections,
        updates: Sequence[tuple[DeployRecord, OperatorInteraction]],
    ) -> None:
        """Write each deploy record, then the operator record of the action that made it."""
        if not updates:
            return
        producer = await connections.producer()
        for record, audit in updates:
            await producer.send_and_wait(
                self.topics.journeys, record.to_json(), key=record.journey.encode()
            )
            await producer.send_and_wait(
                self.topics.interactions, audit.to_json(), key=f"journey:{record.journey}".encode()
            )

    async def _announce_archive(self, connections: SharedConnections, journey: str) -> int:
        """Send `journey.archived` to every customer in the journey so instances end now."""
        redis = connections.redis()
        now = self.clock.now()
        at = format_instant(now)
        count = 0
        # Workers apply `journey.archived` only with the engine's proof of origin.
        origin = EngineOrigin(self.settings.engine_key)
        await origin.load(redis, self.keys)
        async with EventPublisher(self.settings, origin) as publisher:
            async for member in redis.sscan_iter(self.keys.journey_members(journey), count=1000):
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
