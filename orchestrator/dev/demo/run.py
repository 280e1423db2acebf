"""`orchestrator demo`: the engine's main job, end to end, on local Kafka and Redis.

Starts the local infrastructure if needed, deploys the journey library, starts journey
workers, plays a few thousand synthetic customers' lives on a fast-forwarded clock, and
reports progress and a closing summary from the interaction log.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO

from aiokafka import AIOKafkaConsumer, TopicPartition

from orchestrator import jsonwire
from orchestrator.control.operations import JourneyOperations
from orchestrator.control.publisher import EventPublisher
from orchestrator.dev.demo.population import Population
from orchestrator.dev.demo.report import Tally
from orchestrator.dev.localinfra import ensure_local_infrastructure
from orchestrator.dev.namespaces import drop_namespaces
from orchestrator.engine.events import Event
from orchestrator.errors import ConfigurationError
from orchestrator.infra.clock import ScaledClock
from orchestrator.infra.names import TopicNames
from orchestrator.infra.settings import Settings
from orchestrator.infra.topics import ensure_topics, partitions_of
from orchestrator.journey.library import read_sources

__all__ = ["DemoOptions", "run_demo"]

_DAY = 86400.0
# Workers need a few seconds to join the group; the virtual clock starts after that.
_WARM_UP_SECONDS = 6.0
_EARLIER_RUN_TOPIC = re.compile(r"demo\d+\.")
_LOCAL_DIR = Path.home() / ".cache" / "orchestrator-local"


class DemoOptions:
    """What to play: how many customers, how fast, for how long, on how many workers."""

    def __init__(
        self, customers: int, speed: float, days: float, workers: int, journeys: Path
    ) -> None:
        self.customers = customers
        self.speed = speed
        self.days = days
        self.workers = workers
        self.journeys = journeys


def _spawn_workers(settings: Settings, count: int, log_dir: Path) -> list[subprocess.Popen[bytes]]:
    # Several workers on one host cannot share the default /health port; the demo needs none.
    env = {**os.environ, **settings.as_environment(), "ORCHESTRATOR_METRICS_PORT": "0"}
    log_dir.mkdir(parents=True, exist_ok=True)
    workers = []
    for n in range(count):
        log = (log_dir / f"worker-{n}.log").open("wb")
        workers.append(
            subprocess.Popen(
                [sys.executable, "-m", "orchestrator", "worker"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    return workers


async def _tail(settings: Settings, tally: Tally) -> None:
    topic = TopicNames(settings.topic_prefix).interactions
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        assigned = [
            TopicPartition(topic, p) for p in await partitions_of(settings.kafka_bootstrap, topic)
        ]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        while True:
            for messages in (await consumer.getmany(timeout_ms=200, max_records=5000)).values():
                for message in messages:
                    tally.add(jsonwire.loads(message.value))
    finally:
        await consumer.stop()


async def run_demo(options: DemoOptions, out: TextIO) -> int:
    """Run the demo; returns the process exit code."""
    base = Settings()
    ensure_local_infrastructure(base, out)
    await _drop_earlier_runs(base)
    run = f"demo{int(time.time())}"
    origin = time.time() + _WARM_UP_SECONDS
    settings = base.model_copy(
        update={
            "topic_prefix": f"{run}.",
            "redis_prefix": f"{run}:",
            "group_id": f"{run}-journeys",
            "clock_speed": options.speed,
            "clock_origin": origin,
            "operator": "demo",
        }
    )
    clock = ScaledClock(options.speed, origin)
    await ensure_topics(settings)
    sources, problems = read_sources([options.journeys])
    if problems:
        raise ConfigurationError("; ".join(map(str, problems)))
    for outcome in await JourneyOperations(settings).deploy(sources):
        out.write(f"deployed {outcome.journey} v{outcome.version}\n")
    log_dir = _LOCAL_DIR / run
    workers = _spawn_workers(settings, options.workers, log_dir)
    events = Population(options.customers, origin, run=run).events()
    end = origin + options.days * _DAY
    out.write(
        f"{options.workers} journey workers started (logs in {log_dir}); playing "
        f"{len(events)} events of {options.customers} customers over {options.days:g} "
        f"days at {options.speed:g}x ({options.days * _DAY / options.speed:.0f} s)\n"
    )
    out.flush()
    tally = Tally()
    tail = asyncio.create_task(_tail(settings, tally))
    try:
        await _play(settings, clock, events, end=end, tally=tally, out=out)
    finally:
        tail.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tail
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)
    tally.write_summary(out)
    out.write(
        f"\nTopics are prefixed {run}. and kept until the next demo; Kafka and Redis keep "
        "running (deploy/local/down.sh stops them).\n"
    )
    return 0


async def _drop_earlier_runs(settings: Settings) -> None:
    """Delete the topics, keys and worker logs earlier demo runs left behind."""
    await drop_namespaces(settings, lambda name: bool(_EARLIER_RUN_TOPIC.match(name)), "demo[0-9]*")
    for log_dir in _LOCAL_DIR.glob("demo[0-9]*"):
        shutil.rmtree(log_dir, ignore_errors=True)


async def _play(
    settings: Settings,
    clock: ScaledClock,
    events: list[Event],
    *,
    end: float,
    tally: Tally,
    out: TextIO,
) -> None:
    """Publish each event when the virtual clock reaches it; report every 2 s."""
    published = 0
    next_report = time.monotonic()
    async with EventPublisher(settings) as publisher:
        while clock.now() < end:
            now = clock.now()
            first = published
            while published < len(events) and events[published].occurred_at <= now:
                published += 1
            if published > first:
                await publisher.publish(events[first:published])
            if time.monotonic() >= next_report:
                next_report += 2.0
                day = max(0.0, (now - clock.origin) / _DAY)
                out.write(tally.progress_line(day, published) + "\n")
                out.flush()
            await asyncio.sleep(0.05)
        await publisher.flush()
