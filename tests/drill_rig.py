"""The pipeline fault drills run on: private Kafka and Redis, journey workers, a connector
worker, the audit sink, a Twilio stand-in, and a steady load of customers each owed one SMS.

Everything destructive happens to the private servers (tests/outage_infra.py), never to the
shared ones. What counts is what the provider accepted: `Deliveries` notes when each
expected message first reached the stand-in, and how many times.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka.errors import KafkaError
from pydantic import SecretStr

from orchestrator.control.operations import JourneyOperations
from orchestrator.control.publisher import EventPublisher
from orchestrator.dev.standins.twilio import TwilioStandIn
from orchestrator.engine.actions import Sent
from orchestrator.engine.catalog import catalog_of
from orchestrator.engine.events import Event
from orchestrator.infra.names import TopicNames
from orchestrator.infra.settings import Settings
from orchestrator.journey.library import load_journeys, read_sources
from orchestrator.simulate import Simulator
from tests.audit_harness import SinkProcess, fresh_database, stored_ids
from tests.connector_harness import ACCOUNT_SID, AUTH_TOKEN, ConnectorProcess, nothing_waits
from tests.outage_infra import PrivateServer, in_thread, private_kafka, private_redis
from tests.runtime_harness import (
    WorkerProcess,
    group_state,
    isolated_settings,
    prepare,
    read_all,
    reader,
    wait_all_consumed,
    wait_until,
)

DRILL_JOURNEYS = Path(__file__).parent / "drill_journeys"


@dataclass(frozen=True)
class Owed:
    """The messages a drill's load must produce, by what the provider sees: (To, Body)."""

    sends: dict[tuple[str, str], Sent]

    @classmethod
    def of(cls, events: list[Event]) -> Owed:
        """What the simulator says these events send."""
        simulator = Simulator(catalog_of(load_journeys([DRILL_JOURNEYS])))
        sends = [a for a in simulator.run(events) if isinstance(a, Sent)]
        return cls({(str(s.to), str(s.content["body"])): s for s in sends})


def drill_customers(drill: str, count: int) -> list[list[Event]]:
    """`count` customers, each a profile (phone, name) then a `drill.ping`: one SMS each."""
    run = uuid.uuid4().hex[:6]
    customers: list[list[Event]] = []
    for n in range(count):
        cid = f"{drill}-{run}-{n}"
        at = time.time()
        profile = {"first_name": cid, "phone": f"+1555{uuid.uuid4().int % 10**7:07d}"}
        customers.append(
            [
                Event(f"{cid}:p", cid, "profile.updated", at, "web", profile),
                Event(f"{cid}:ping", cid, "drill.ping", at + 0.001, "web", {}),
            ]
        )
    return customers


@dataclass
class Deliveries:
    """When each (To, Body) first reached the provider, and how often it arrived."""

    twilio: TwilioStandIn
    first: dict[tuple[str, str], float] = field(default_factory=dict)
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    _seen: int = 0

    def poll(self) -> None:
        """Take in what the stand-in accepted since the last poll."""
        now = time.monotonic()
        for form in self.twilio.accepted[self._seen :]:
            key = (form["To"], form["Body"])
            self.first.setdefault(key, now)
            self.counts[key] += 1
        self._seen = len(self.twilio.accepted)

    async def watch(self) -> None:
        """Poll every 50 ms until cancelled (the delivery times' resolution)."""
        while True:
            self.poll()
            await asyncio.sleep(0.05)


@dataclass
class Rig:
    """One running pipeline on private servers; drills run on it one after another."""

    settings: Settings
    kafka: PrivateServer
    redis: PrivateServer
    twilio: TwilioStandIn
    deliveries: Deliveries
    database_url: str
    logs: Path
    worker_count: int
    workers: list[WorkerProcess] = field(default_factory=list)
    connectors: list[ConnectorProcess] = field(default_factory=list)
    sinks: list[SinkProcess] = field(default_factory=list)
    _started: int = 0

    def _log(self, kind: str) -> Path:
        self._started += 1
        return self.logs / f"{kind}-{self._started}.log"

    def start_worker(self) -> WorkerProcess:
        """One more `orchestrator worker` in the group."""
        worker = WorkerProcess(self.settings, self._log("worker"))
        self.workers.append(worker)
        return worker

    def start_connector(self) -> ConnectorProcess:
        """One more `orchestrator connectors --channels sms`."""
        connector = ConnectorProcess(self.settings, "sms", self._log("connectors"))
        self.connectors.append(connector)
        return connector

    def start_sink(self) -> SinkProcess:
        """One more `orchestrator audit-sink`."""
        sink = SinkProcess(self.settings, self._log("audit-sink"))
        self.sinks.append(sink)
        return sink

    def exited_unasked(self) -> list[str]:
        """Processes of the pipeline that exited without being killed by a drill."""
        return [
            f"{p.log_path.name} exited {p.process.returncode}"
            for p in (*self.workers, *self.connectors, *self.sinks)
            if p.process.poll() is not None and p.process.returncode != -9
        ]

    async def workers_joined(self, count: int) -> None:
        """Wait until `count` workers form a stable group."""

        async def joined() -> bool:
            return await group_state(self.settings) == ("Stable", count)

        await wait_until(joined, f"{count} workers joined", timeout=120, interval=0.3)

    async def keep_workers_running(self) -> None:
        """Start workers until `worker_count` run, and wait until they form the group."""
        running = sum(w.process.poll() is None for w in self.workers)
        if running < self.worker_count:
            for _ in range(self.worker_count - running):
                self.start_worker()
            await self.workers_joined(self.worker_count)

    async def settled(self, timeout: float) -> None:
        """Wait until workers and connectors have committed everything published so far,
        and no message waits in the retry schedule (one a killed connector held comes due
        after its claim's lease: only then could it be sent twice)."""
        await wait_all_consumed(self.settings, timeout=timeout)
        await wait_until(
            lambda: nothing_waits(self.settings, "sms"), "connectors done", timeout=timeout
        )

    async def outbound_repeats(self, message_ids: set[str]) -> int:
        """Records on `outbound` repeating one of `message_ids` (a re-sent outbox;
        connectors dedupe them, so they are not duplicates at the provider)."""
        async with reader(self.settings, TopicNames(self.settings.topic_prefix).outbound) as log:
            records = await read_all(log, self.settings)
        counts = Counter(r["message_id"] for r in records if r["message_id"] in message_ids)
        return sum(n - 1 for n in counts.values())

    async def audit_gaps(self) -> tuple[int, int]:
        """(interaction records missing from the audit store, records stored twice)."""
        topic = TopicNames(self.settings.topic_prefix).interactions
        async with reader(self.settings, topic) as log:
            records = await read_all(log, self.settings)
        wanted = {r["record_id"] for r in records}

        async def stored_all() -> bool:
            return set(await stored_ids(self.database_url)) >= wanted

        with contextlib.suppress(AssertionError):
            await wait_until(stored_all, "the audit store has every record", interval=0.5)
        stored = await stored_ids(self.database_url)
        return len(wanted - set(stored)), len(stored) - len(set(stored))


async def publish_steadily(
    settings: Settings, customers: list[list[Event]], rate: float
) -> dict[str, float]:
    """Publish `rate` customers a second, as a channel app would: a batch the broker refuses
    (Kafka away) is sent again until it is taken. When each customer was published."""
    published: dict[str, float] = {}
    step = max(1, round(rate / 10))
    async with EventPublisher(settings) as publisher:
        for start in range(0, len(customers), step):
            batch = customers[start : start + step]
            events = [e for customer in batch for e in customer]
            while True:
                try:
                    await publisher.publish_acked(events)
                    break
                except (KafkaError, OSError):
                    await asyncio.sleep(0.5)  # a channel app's retry pacing
            now = time.monotonic()
            published.update((c[0].customer_id, now) for c in batch)
            await asyncio.sleep(step / rate)  # the load's pacing
    return published


def rig_settings(base: Settings, kafka: str, redis: str, **overrides: Any) -> Settings:
    """Isolated settings on the private servers with the SMS channel pointed at nowhere yet."""
    values: dict[str, Any] = {
        "kafka_bootstrap": kafka,
        "redis_url": redis,
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": SecretStr(AUTH_TOKEN),
        "twilio_from": "+15550000001",
        "public_url": "https://orchestrator.example",
        **overrides,
    }
    settings = isolated_settings(base, **values)
    return settings.model_copy(update={"connector_group": f"{settings.group_id}-connectors"})


@contextlib.asynccontextmanager
async def running_rig(
    base: Settings, logs: Path, overrides: Mapping[str, Any] | None = None, workers: int = 2
) -> AsyncIterator[Rig]:
    """Private servers, the stand-in, a fresh audit database and the pipeline's processes
    (`workers` journey workers), with `overrides` of the settings."""
    kafka, bootstrap = private_kafka()
    redis, redis_url = private_redis(logs / "redis-state")
    twilio = TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN)
    await asyncio.gather(in_thread(kafka.start), in_thread(redis.start))
    await twilio.start()
    watcher: asyncio.Task[None] | None = None
    rig: Rig | None = None
    try:
        settings = rig_settings(
            base, bootstrap, redis_url, twilio_api_base=twilio.base_url, **(overrides or {})
        )
        await prepare(settings)
        sources, problems = read_sources([DRILL_JOURNEYS])
        assert not problems, problems
        await JourneyOperations(settings, "drill").deploy(sources)
        async with fresh_database(settings) as database_url:
            settings = settings.model_copy(update={"database_url": database_url})
            deliveries = Deliveries(twilio)
            rig = Rig(settings, kafka, redis, twilio, deliveries, database_url, logs, workers)
            watcher = asyncio.create_task(deliveries.watch())
            rig.start_connector()
            rig.start_sink()
            await rig.keep_workers_running()
            yield rig
            for process in (*rig.workers, *rig.connectors, *rig.sinks):
                if process.process.poll() is None:
                    process.terminate()
    finally:
        if watcher is not None:
            watcher.cancel()
        if rig is not None:
            for process in (*rig.workers, *rig.connectors, *rig.sinks):
                if process.process.poll() is None:
                    process.kill()
        await twilio.stop()
        await asyncio.gather(in_thread(kafka.remove), in_thread(redis.remove))
