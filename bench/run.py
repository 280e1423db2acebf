"""The benchmark: one run on the real local Kafka, Redis and PostgreSQL, checked against targets.

    make bench                                  # the full run
    .venv/bin/python bench/run.py --quick       # smaller sizes, under 2 minutes

Measures the pure engine, one journey worker of the default deployment end to end, a bare
Kafka → Redis → Kafka baseline on the same topic and data (and the ratio of the two),
publish → outbound latency at half the worker's measured maximum, the worker's Redis round
trips and commands per event and bytes per active journey instance, timer lateness with
10,000 timers due at once, the API's ingest rate and the audit sink's rate. A progress bar
while it runs, a table at the end, a PNG chart in `bench/out/`, and a JSON object of every
figure as the last line. Targets are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import api_ingest
import audit
import chart
import pipeline
import redis_cost
import throughput
from rich.console import Console
from rich.progress import Progress, TaskID
from rich.table import Table

from orchestrator import jsonwire
from orchestrator.infra.gcpolicy import collect_garbage_less_often
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.redisclient import connect_redis

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"


@dataclass(frozen=True)
class Sizes:
    """How big each measurement is."""

    engine_customers: int
    worker_customers: int
    latency_seconds: float
    timers: int
    api_seconds: float
    audit_records: int


QUICK = Sizes(1000, 3000, 6, 10_000, 3, 10_000)
FULL = Sizes(3000, 10_000, 20, 10_000, 10, 100_000)

# (figure, comparison, bound): a target the issue sets for the default deployment.
TARGETS: list[tuple[str, str, float]] = [
    ("ratio", ">=", 0.5),
    ("engine_advance_per_s", ">=", 50_000),
    ("redis_round_trips_per_event", "<=", 0.1),
    ("redis_bytes_per_instance", "<=", 600),
    ("latency_p99_ms", "<=", 100),
    ("timer_lateness_p99_ms", "<=", 250),
]


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of the sorted `values` lie."""
    return values[max(0, int(len(values) * share) - 1)]


class Run:
    """The run's progress bar and figures."""

    def __init__(self, progress: Progress, sizes: Sizes) -> None:
        self.progress = progress
        self.sizes = sizes
        self.figures: dict[str, Any] = {}
        self.origin = time.perf_counter()
        self.series: dict[str, pipeline.Samples] = {}
        self.latencies = pipeline.Latencies()

    def phase(self, name: str, total: float) -> tuple[TaskID, Callable[[float], None]]:
        """A progress bar for one measurement and what advances it."""
        task = self.progress.add_task(name, total=total)

        def tick(done: float) -> None:
            self.progress.update(task, completed=min(done, total))

        return task, tick

    def done(self, task: TaskID) -> None:
        """Mark a measurement finished."""
        total = self.progress.tasks[task].total
        self.progress.update(task, completed=total)

    def pure_engine(self) -> None:
        """advance() calls per second on one core."""
        task, _ = self.phase("pure engine", 1)
        self.figures["engine_advance_per_s"] = round(
            throughput.bench_engine(self.sizes.engine_customers)
        )
        self.done(task)

    async def worker(self) -> None:
        """Baseline, then the default worker, on one backlog; then latency at half load."""
        settings = throughput.bench_settings("e2e")
        task, tick = self.phase("publish backlog", 1)
        total = await pipeline.backlog(
            settings, str(ROOT / "journeys"), self.sizes.worker_customers
        )
        self.done(task)
        self.figures["worker_events"] = total
        _, tick = self.phase("baseline", total)
        baseline = await pipeline.baseline_rate(settings, total, self.origin, tick)
        self.series["baseline"] = baseline
        redis = connect_redis(settings)
        try:
            before = await redis_cost.commandstats(redis)
            _, tick = self.phase("engine (default deployment)", total)
            with redis_cost.counted() as count:
                async with pipeline.running_engine(settings):
                    engine = await pipeline.follow(
                        settings, settings.group_id, total, self.origin, tick
                    )
                    round_trips, commands = count.round_trips, count.commands
                    server = redis_cost.commands_between(
                        before, await redis_cost.commandstats(redis)
                    )
                    size, instances = await redis_cost.bytes_per_instance(
                        redis, RedisKeys(settings.redis_prefix), 2000
                    )
        finally:
            await redis.aclose()
        rate = engine.rate()
        task, tick_seconds = self.phase("latency at half load", self.sizes.latency_seconds)
        async with pipeline.worker_process(settings):
            self.latencies = await pipeline.latency_at(
                settings, rate / 2, self.sizes.latency_seconds, self.origin, tick_seconds
            )
        self.done(task)
        self.series["engine"] = engine
        latencies = self.latencies.sorted()
        self.figures.update(
            {
                "engine_events_per_s": round(rate),
                "baseline_events_per_s": round(baseline.rate()),
                "ratio": round(rate / baseline.rate(), 3),
                "redis_round_trips_per_event": round(round_trips / total, 4),
                "redis_commands_per_event": round(commands / total, 3),
                "redis_server_commands_per_event": round(sum(server.values()) / total, 3),
                "redis_server_commands_top": dict(list(server.items())[:6]),
                "redis_bytes_per_instance": size,
                "active_instances": instances,
                "latency_offered_per_s": round(rate / 2),
                "latency_samples": len(latencies),
                "latency_p50_ms": round(statistics.median(latencies) * 1000, 1),
                "latency_p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
                "latency_p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
            }
        )

    async def timers(self) -> None:
        """Lateness of 10,000 timers due at once."""
        task, _ = self.phase(f"{self.sizes.timers:,} timers due at once", 1)
        fired, spare = await throughput.bench_timer_latency(self.sizes.timers)
        lateness = sorted(fired)
        self.done(task)
        # Negative: the worker had not set every timer by its due time (it was still applying
        # the ticks), so the lateness counts that too.
        self.figures["timer_set_spare_s"] = round(spare, 1)
        self.figures["timer_lateness_p50_ms"] = round(statistics.median(lateness) * 1000)
        self.figures["timer_lateness_p99_ms"] = round(percentile(lateness, 0.99) * 1000)

    async def api_and_audit(self) -> None:
        """The API's ingest rate and the audit sink's storage rate."""
        task, _ = self.phase("API ingest", 1)
        api = await api_ingest.run(self.sizes.api_seconds, 100, 16)
        self.figures["api_ingest_events_per_s"] = api["api_ingest_events_per_s"]
        self.done(task)
        task, _ = self.phase("audit sink", 1)
        records = self.sizes.audit_records
        figures = await audit.run(
            argparse.Namespace(
                records=records,
                rows=records,
                samples=50,
                export=min(records, 20_000),
                shards=1,
                sink_only=False,
            )
        )
        self.figures["audit_sink_records_per_s"] = figures["sink_records_per_s"]
        self.done(task)


def verdicts(figures: dict[str, Any]) -> dict[str, bool]:
    """Whether each target is met."""
    return {
        name: (figures[name] >= bound if op == ">=" else figures[name] <= bound)
        for name, op, bound in TARGETS
        if name in figures
    }


def table(figures: dict[str, Any], met: dict[str, bool]) -> Table:
    """The figures, each with its target where it has one."""
    bounds = {name: f"{op} {bound:,g}" for name, op, bound in TARGETS}
    out = Table(title="orchestrator bench")
    for column in ("figure", "value", "target", "met"):
        out.add_column(column)
    for name, value in figures.items():
        if isinstance(value, dict):
            continue
        shown = f"{value:,}" if isinstance(value, int | float) else str(value)
        verdict = "" if name not in met else ("yes" if met[name] else "NO")
        out.add_row(name, shown, bounds.get(name, ""), verdict)
    return out


PHASES = ("engine", "worker", "timers", "services")


async def measure(run: Run, phases: set[str]) -> None:
    """The measurements of `phases`, dropping this run's namespaces at the end."""
    try:
        if "engine" in phases:
            run.pure_engine()
        if "worker" in phases:
            await run.worker()
        if "timers" in phases:
            await run.timers()
        if "services" in phases:
            await run.api_and_audit()
    finally:
        await throughput.drop_run_namespaces()


def main() -> None:
    """Run, then print the table and, last, the figures as one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, under 2 minutes")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=PHASES,
        default=PHASES,
        help="run only these: the pure engine; worker, baseline, Redis and latency; "
        "timers; API ingest and the audit sink",
    )
    args = parser.parse_args()
    # The in-process worker and the baseline run under the collector policy of the deployed
    # worker (`orchestrator worker`); the default policy walked this process's start-up heap
    # (the whole bench's imports) over and over, slowing the baseline most.
    collect_garbage_less_often()
    console = Console(stderr=True)
    with Progress(console=console) as progress:
        run = Run(progress, QUICK if args.quick else FULL)
        asyncio.run(measure(run, set(args.only)))
    OUT.mkdir(exist_ok=True)
    picture = OUT / f"bench-{time.strftime('%Y%m%dT%H%M%S')}.png"
    chart.draw(picture, run.series, run.latencies.points)
    run.figures["chart"] = str(picture.relative_to(ROOT))
    run.figures["quick"] = args.quick
    # The machine may be shared: figures from a loaded one are not comparable to an idle one's.
    run.figures["load_average_1m"] = round(os.getloadavg()[0], 1)
    run.figures["cpus"] = os.cpu_count()
    met = verdicts(run.figures)
    Console().print(table(run.figures, met))
    print(jsonwire.dumps({**run.figures, "targets_met": met}).decode())


if __name__ == "__main__":
    main()
