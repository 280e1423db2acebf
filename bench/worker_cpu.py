"""Events one in-process worker applies per CPU second of this process, on a backlog.

    .venv/bin/python bench/worker_cpu.py [--customers 3000]

For A/B runs of two versions on a shared machine: wall-clock events/s move 2-3x with the
other sessions' load, CPU seconds far less. Same backlog as `bench/run.py`'s worker phase.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

import pipeline
import throughput

ROOT = Path(__file__).resolve().parent.parent


async def measure(customers: int) -> str:
    """One line: events, CPU seconds, events per CPU second, wall events/s, load average."""
    settings = throughput.bench_settings("cpu")
    try:
        total = await pipeline.backlog(settings, str(ROOT / "journeys"), customers)
        cpu, wall = time.process_time(), time.perf_counter()
        async with pipeline.running_engine(settings):
            await pipeline.follow(settings, settings.group_id, total, wall, lambda _: None)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await throughput.drop_run_namespaces()
    return (
        f"{total} events, {cpu:.2f} CPU s: {total / cpu:,.0f} events per CPU second "
        f"(wall {total / wall:,.0f}/s, load average {os.getloadavg()[0]:.1f})"
    )


def main() -> None:
    """Print the one line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=3000)
    print(asyncio.run(measure(parser.parse_args().customers)))


if __name__ == "__main__":
    main()
