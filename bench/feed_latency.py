"""Publish → outbound latency of each feed at one fixed offered load, back to back.

    .venv/bin/python bench/feed_latency.py [--rate 400] [--seconds 8] [--rounds 2]
                                           [--feeds aiokafka]

`bench/run.py` offers half of what the worker managed; on a shared machine that is a moving
target. This offers the same fixed rate to an `orchestrator worker` process on each feed in
turn (faust, then aiokafka, `--rounds` times), each after the worker has applied a small
backlog, so the feeds are compared on the same load, close in time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from pathlib import Path

import pipeline
import throughput

from orchestrator import jsonwire

ROOT = Path(__file__).resolve().parent.parent
FEEDS = ("faust", "aiokafka")


async def one(feed: str, rate: float, seconds: float) -> dict[str, float]:
    """p50/p95/p99 latency of one worker process on `feed`, in its own namespace."""
    settings = throughput.bench_settings(f"lat{feed}{int(time.time())}", feed=feed)
    total = await pipeline.backlog(settings, str(ROOT / "journeys"), 1000)
    async with pipeline.worker_process(settings):
        origin = time.perf_counter()
        await pipeline.follow(settings, settings.group_id, total, origin, lambda _: None)
        latencies = (
            await pipeline.latency_at(settings, rate, seconds, origin, lambda _: None)
        ).sorted()
    return {
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(latencies[max(0, int(len(latencies) * 0.95) - 1)] * 1000, 1),
        "p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000, 1),
        "load_average_1m": round(os.getloadavg()[0], 1),
    }


async def run(
    rate: float, seconds: float, rounds: int, feeds: list[str]
) -> list[dict[str, object]]:
    """Every round of every feed; drops this run's namespaces at the end."""
    results: list[dict[str, object]] = []
    try:
        for _ in range(rounds):
            for feed in feeds:
                figures = await one(feed, rate, seconds)
                print(
                    f"{feed:>8} feed at {rate:,.0f} events/s: p50 {figures['p50_ms']} ms, "
                    f"p95 {figures['p95_ms']} ms, p99 {figures['p99_ms']} ms "
                    f"(load average {figures['load_average_1m']})"
                )
                results.append({"feed": feed, **figures})
    finally:
        await throughput.drop_run_namespaces()
    return results


def main() -> None:
    """Print one line per round and feed, then all of them as a JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=400.0, help="events/s offered")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--feeds", nargs="+", choices=FEEDS, default=list(FEEDS))
    args = parser.parse_args()
    results = asyncio.run(run(args.rate, args.seconds, args.rounds, args.feeds))
    print(jsonwire.dumps(results).decode())


if __name__ == "__main__":
    main()
