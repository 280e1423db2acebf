"""Backtest memory benchmark on the local Kafka: peak RSS as the window grows.

    .venv/bin/python bench/backtest.py --per-day 2000 --days 1 2 4 6

Publishes `--per-day` customers a day (a profile, sms consent for half, the trigger, a
purchase for a third) with broker times spread over the last `max(--days)` days, deploys the
test journey, then runs `orchestrator backtest DRAFT --from <N days ago> --until now` in a
fresh process for each N and reads that process's peak resident memory (`wait4`). The spool
keeps events on disk and the replay holds one customer at a time, so memory should stay flat
while events grow. Not asserted anywhere: the last line is a JSON object of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from orchestrator import jsonwire
from orchestrator.control.operations import JourneyOperations
from orchestrator.dev.namespaces import drop_namespaces
from orchestrator.engine.events import Event
from orchestrator.infra.settings import Settings
from orchestrator.infra.topics import ensure_topics
from orchestrator.timefmt import format_instant

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.backtest_harness import draft_source, journey, publish_at, write_draft  # noqa: E402

RUN = uuid.uuid4().hex[:8]
DAY = 86400.0


def customer_events(customer: str, n: int, at: float) -> list[Event]:
    """One customer's day: profile, consent (every other), the trigger, a purchase (a third)."""
    events = [
        Event(f"{customer}-p", customer, "profile.updated", at - 60, None,
              {"first_name": customer, "phone": "+15550100"}),
        Event(f"{customer}-s", customer, "bt.start", at, "web", {}),
    ]  # fmt: skip
    if n % 2 == 0:
        events.append(Event(f"{customer}-c", customer, "consent.updated", at - 30, None,
                            {"channel": "sms", "status": "opted_in"}))  # fmt: skip
    if n % 3 == 0:
        events.append(Event(f"{customer}-b", customer, "bt.buy", at + 3600, "web", {}))
    return events


def peak_rss(
    settings: Settings, draft: Path, start: float, end: float
) -> tuple[int, float, dict[str, int]]:
    """Run the backtest command in a fresh process; (peak RSS in KiB, seconds, what it
    replayed: events and customers, from its JSON report)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "backtest", str(draft), "--json", "--no-progress",
         "--from", format_instant(start), "--until", format_instant(end)],
        env={**os.environ, **settings.as_environment()},
        stdout=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the backtest failed (exit {os.waitstatus_to_exitcode(status)})")
    report = jsonwire.loads(output)
    replayed = {"events": report["events"], "customers": report["customers"]}
    return usage.ru_maxrss, time.perf_counter() - started, replayed


async def prepare(settings: Settings, per_day: int, days: int, now: float) -> int:
    """Deploy the journey and publish `days` days of traffic; how many events."""
    await ensure_topics(settings)
    async with JourneyOperations(settings, "bench") as ops:
        await ops.deploy([journey()])
    published = 0
    for day in reversed(range(days)):  # oldest first: broker times grow with offsets
        at = now - (day + 0.5) * DAY
        events = [e for n in range(per_day) for e in customer_events(f"d{day}c{n}", n, at + n)]
        await publish_at(settings, events, int(at * 1000))
        published += len(events)
    return published


def main() -> None:
    """Publish, then measure each window; print a table and a JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-day", type=int, default=2000, help="customers a day")
    parser.add_argument("--days", type=int, nargs="+", default=[1, 2, 4, 6], help="windows")
    args = parser.parse_args()
    settings = Settings().model_copy(
        update={"topic_prefix": f"bench.{RUN}.backtest.", "redis_prefix": f"bench:{RUN}:bt:"}
    )
    now = time.time()
    figures: list[dict[str, float | int]] = []
    try:
        published = asyncio.run(prepare(settings, args.per_day, max(args.days), now))
        print(f"published {published:,} events over {max(args.days)} days")
        with tempfile.TemporaryDirectory() as directory:
            draft = write_draft(draft_source(), Path(directory))
            for days in sorted(args.days):
                rss, seconds, replayed = peak_rss(settings, draft, now - days * DAY, now + 60)
                figures.append({"days": days, **replayed, "peak_rss_mib": round(rss / 1024, 1),
                                "seconds": round(seconds, 1)})  # fmt: skip
                print(f"{days} days, {replayed['events']:,} events, {replayed['customers']:,} "
                      f"customers: peak RSS {rss / 1024:.1f} MiB in {seconds:.1f} s")  # fmt: skip
    finally:
        asyncio.run(
            drop_namespaces(Settings(), lambda n: n.startswith(f"bench.{RUN}."), f"bench:{RUN}:*")
        )
    print(jsonwire.dumps(figures).decode())


if __name__ == "__main__":
    main()
