"""Throughput and timer-latency benchmark on the local Kafka and Redis.

    make bench            # or: .venv/bin/python bench/throughput.py --customers 5000

Measures (1) the pure engine (`advance()` calls per second), (2) one journey worker end to
end (published -> applied -> committed, events per second), (3) 1 and 2 worker processes in
one group on each feed (scaling out), (4) how late timers fire.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from orchestrator import jsonwire
from orchestrator.control.operations import JourneyOperations
from orchestrator.control.publisher import EventPublisher
from orchestrator.dev.demo.population import Population
from orchestrator.dev.namespaces import drop_namespaces
from orchestrator.engine.advance import advance
from orchestrator.engine.catalog import catalog_of
from orchestrator.engine.events import Event
from orchestrator.engine.state import CustomerState
from orchestrator.infra.names import TopicNames
from orchestrator.infra.settings import Settings
from orchestrator.infra.topics import ensure_topics
from orchestrator.journey.library import load_journeys, read_sources
from orchestrator.runtime.worker import JourneyWorker
from orchestrator.timefmt import parse_instant

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.runtime_harness import (  # noqa: E402
    WorkerProcess,
    group_state,
    reader,
    wait_all_consumed,
    wait_until,
)

# The wait of `bench/journeys/tick.yaml`: every tick's timer falls due this long after it.
TICK_WAIT_SECONDS = 10
# Every namespace of this run starts with it, so the run can drop them all at the end.
RUN = uuid.uuid4().hex[:8]


def bench_settings(name: str, **overrides: str) -> Settings:
    """Settings for one measurement, in its own namespace of this run."""
    return Settings().model_copy(
        update={
            "topic_prefix": f"bench.{RUN}.{name}.",
            "redis_prefix": f"bench:{RUN}:{name}:",
            "group_id": f"bench-{RUN}-{name}",
            # Other workers may share this host: this one serves no /health port.
            "health_port": 0,
            **overrides,
        }
    )


async def drop_run_namespaces() -> None:
    """Delete this run's topics and keys: leftover partitions slow the broker's start-up."""
    await drop_namespaces(
        Settings(), lambda name: name.startswith(f"bench.{RUN}."), f"bench:{RUN}:*"
    )


def bench_engine(customers: int) -> float:
    """advance() calls per CPU second over the demo population, in virtual time.

    CPU time of this process, not wall time: on a machine shared with other processes,
    wall time would count their turns on the core too.
    """
    catalog = catalog_of(load_journeys([ROOT / "journeys"]))
    events = Population(customers, time.time()).events()
    states: dict[str, CustomerState] = {}
    # Collect the garbage of start-up (imports, the library, the population) now: otherwise
    # the first full collections fall inside the timed loop (run.py measured ~25% less).
    gc.collect()
    started = time.process_time()
    for event in events:
        state = states.get(event.customer_id) or CustomerState(event.customer_id)
        states[event.customer_id], _ = advance(state, event, catalog, event.occurred_at)
    return len(events) / (time.process_time() - started)


async def deployed_backlog(settings: Settings, customers: int) -> list[Event]:
    """Create the topics, deploy the library; the population's last hour of events."""
    await ensure_topics(settings)
    sources, _ = read_sources([ROOT / "journeys"])
    await JourneyOperations(settings, "bench").deploy(sources)
    now = time.time()
    return [
        e
        for e in Population(customers, now - 3600, spread_days=0.04).events()
        if e.occurred_at <= now
    ]


async def bench_worker(customers: int, feed: str = "faust") -> tuple[int, float]:
    """(events, events per second) for one worker applying a pre-published backlog."""
    settings = bench_settings(feed, feed=feed)
    events = await deployed_backlog(settings, customers)
    async with EventPublisher(settings) as publisher:
        await publisher.publish(events)
    started = time.perf_counter()
    async with JourneyWorker(settings) as worker:
        task = asyncio.create_task(worker.run())
        await wait_all_consumed(settings, timeout=600)
        elapsed = time.perf_counter() - started
        worker.stop()
        await task
    return len(events), len(events) / elapsed


async def bench_scaling(customers: int, workers: int, feed: str) -> tuple[int, float]:
    """(events, events per second) for `workers` worker processes sharing a backlog.

    The workers join the group first; the clock starts when publishing starts, so start-up
    and joining are not measured and the workers apply events while they are published.
    """
    settings = bench_settings(f"scale{workers}{feed}", feed=feed)
    events = await deployed_backlog(settings, customers)
    with tempfile.TemporaryDirectory(prefix="orchestrator-bench-") as logs:
        processes = [WorkerProcess(settings, Path(logs) / f"w{n}.log") for n in range(workers)]
        try:

            async def joined() -> bool:
                return await group_state(settings) == ("Stable", workers)

            await wait_until(joined, "the workers joined", timeout=120)
            started = time.perf_counter()
            async with EventPublisher(settings) as publisher:
                await publisher.publish(events)
            await wait_all_consumed(settings, timeout=600)
            elapsed = time.perf_counter() - started
        finally:
            for process in processes:
                process.terminate()
    return len(events), len(events) / elapsed


async def bench_timer_latency(timers: int) -> tuple[list[float], float]:
    """Seconds between due time and the `timer.fired` event reaching Kafka; and the seconds
    to spare between the worker having applied every tick (so every timer is set) and the
    due time. Negative: the timers were set late, and lateness counts that too."""
    settings = bench_settings("timers")
    await ensure_topics(settings)
    journey = ROOT / "bench" / "journeys"
    sources, _ = read_sources([journey])
    await JourneyOperations(settings, "bench").deploy(sources)
    topic = TopicNames(settings.topic_prefix).events
    logs = tempfile.TemporaryDirectory(prefix="orchestrator-bench-")
    # Its own process, as deployed: this one's publisher and reader do not share its loop.
    worker = WorkerProcess(settings, Path(logs.name) / "worker.log")

    async def joined() -> bool:
        return await group_state(settings) == ("Stable", 1)

    try:
        await wait_until(joined, "the worker joined its group", timeout=120)
        return await _fired_lateness(settings, topic, timers)
    finally:
        worker.terminate()
        logs.cleanup()


async def _fired_lateness(settings: Settings, topic: str, timers: int) -> tuple[list[float], float]:
    """Publish `timers` ticks at once; each `timer.fired`'s broker time minus its due time,
    and the seconds to spare (see `bench_timer_latency`)."""
    async with reader(settings, topic) as log:
        start = time.time()
        async with EventPublisher(settings) as publisher:
            for n in range(timers):
                await publisher.publish_raw(
                    jsonwire.dumps(
                        {
                            "event_id": f"t{n}",
                            "customer_id": f"c{n}",
                            "name": "tick",
                            "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start)),
                        }
                    ),
                    key=f"c{n}".encode(),
                )
        await wait_all_consumed(settings, timeout=120)
        spare = int(start) + TICK_WAIT_SECONDS - time.time()
        await log.until(
            lambda vs: sum(v["name"] == "timer.fired" for v in vs) >= timers, timeout=120
        )
        lateness = [
            message.timestamp / 1000 - parse_instant(value["occurred_at"])
            for message, value in zip(log.raw, log.values, strict=True)
            if value["name"] == "timer.fired"
        ]
    return lateness, spare


def main() -> None:
    """Run all three and print a small report."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--timers", type=int, default=2000)
    args = parser.parse_args()
    print(f"engine: {bench_engine(args.customers):,.0f} advance() calls/s")
    try:
        for feed in ("faust", "aiokafka"):
            count, rate = asyncio.run(bench_worker(args.customers, feed))
            print(f"worker ({feed} feed): {count} events applied end to end at {rate:,.0f} ev/s")
        for feed in ("faust", "aiokafka"):
            for workers in (1, 2):
                count, rate = asyncio.run(bench_scaling(args.customers, workers, feed))
                print(
                    f"{workers} worker process(es) ({feed} feed): {count} events published and "
                    f"applied at {rate:,.0f} ev/s"
                )
        lateness = sorted(asyncio.run(bench_timer_latency(args.timers))[0])
    finally:
        asyncio.run(drop_run_namespaces())
    print(
        f"timers: {len(lateness)} fired; lateness p50 {statistics.median(lateness) * 1000:.0f} "
        f"ms, p99 {lateness[int(len(lateness) * 0.99) - 1] * 1000:.0f} ms, "
        f"max {lateness[-1] * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
