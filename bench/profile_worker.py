"""Where one journey worker's time goes: cProfile over a backlog, grouped by part.

    .venv/bin/python bench/profile_worker.py [--customers 3000] [--top 25] [--cpu]

Runs the default deployment's worker in this process on a pre-published backlog (as
`bench/run.py` does), profiles the whole thread (worker, feed, clients, event loop), and
prints CPU seconds per part of the commit path, then the functions with the most own time.
`--cpu` runs it unprofiled and prints only the process's CPU time per event: the figure
to compare versions by on a shared machine (the profiler inflates Python calls several-fold,
and wall-clock rates follow whatever else runs).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import time
from pathlib import Path

import pipeline
import throughput

ROOT = Path(__file__).resolve().parent.parent

# (label, the function whose cumulative time is that part), in commit-path order.
PARTS = [
    ("decode (step 1)", "orchestrator/contracts/codec.py", "decode_event"),
    ("load (step 2)", "orchestrator/runtime/store.py", "load"),
    ("advance (step 3)", "orchestrator/engine/advance.py", "advance"),
    ("outbox (step 3)", "orchestrator/runtime/effects.py", "collect"),
    ("state encoding (step 4)", "orchestrator/engine/state.py", "to_stored"),
    ("save (step 4)", "orchestrator/runtime/store.py", "save"),
    ("produce (step 5)", "orchestrator/infra/batching.py", "send_all"),
    ("settle (step 6)", "orchestrator/runtime/store.py", "settle"),
    ("whole batch (steps 1-6)", "orchestrator/runtime/processor.py", "process"),
]


async def profiled(customers: int, profile: cProfile.Profile | None) -> tuple[int, float, float]:
    """(events, wall seconds, CPU seconds of this process) of the worker applying the
    backlog, profiled unless `profile` is None."""
    settings = throughput.bench_settings("profile")
    try:
        total = await pipeline.backlog(settings, str(ROOT / "journeys"), customers)
        started, cpu = time.perf_counter(), time.process_time()
        if profile:
            profile.enable()
        async with pipeline.running_engine(settings):
            await pipeline.follow(settings, settings.group_id, total, started, lambda _: None)
        if profile:
            profile.disable()
        return total, time.perf_counter() - started, time.process_time() - cpu
    finally:
        await throughput.drop_run_namespaces()


def main() -> None:
    """Profile, then print the parts and the top functions."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--cpu", action="store_true", help="unprofiled: CPU time per event only")
    args = parser.parse_args()
    if args.cpu:
        total, seconds, cpu = asyncio.run(profiled(args.customers, None))
        print(
            f"{total:,} events in {seconds:.1f} s wall, {cpu:.2f} s of CPU: "
            f"{total / cpu:,.0f} events per CPU second, {cpu / total * 1e6:.0f} µs/event "
            f"(load average {os.getloadavg()[0]:.1f})"
        )
        return
    # CPU time, not wall time: the machine may be shared, and waiting is not cost.
    profile = cProfile.Profile(time.process_time)
    total, seconds, _ = asyncio.run(profiled(args.customers, profile))
    stats = pstats.Stats(profile)
    timings = stats.stats  # type: ignore[attr-defined]
    whole = sum(t[2] for t in timings.values())
    print(f"{total:,} events in {seconds:.1f} s wall, {whole:.1f} s of CPU profiled")
    for label, path, name in PARTS:
        cumulative = sum(
            t[3] for (file, _, func), t in timings.items() if file.endswith(path) and func == name
        )
        share = cumulative / whole * 100
        per_event = cumulative / total * 1e6
        print(f"  {label:<26} {cumulative:6.2f} s  {share:4.1f}%  {per_event:6.0f} µs/event")
    stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
