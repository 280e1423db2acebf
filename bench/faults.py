"""Fault drills at the issue's sizes, on private Kafka and Redis (issue 20, item 4).

    .venv/bin/python bench/faults.py              # 30 s outages, 10,000 malformed records
    .venv/bin/python bench/faults.py --quick      # the CI sizes (tests/test_fault_drills.py)
    .venv/bin/python bench/faults.py --drill "provider down"

Under steady load, one after another on one pipeline (two journey workers, a connector
worker, the audit sink, a Twilio stand-in), with the default settings: (a) kill -9 a journey
worker, (b) restart Redis, (c) Redis unreachable (frozen) for 30 s, (d) restart the Kafka
broker, (e) the provider down for 30 s, (f) kill -9 the connector worker and the audit sink,
(g) 10,000 malformed records in the stream. Each reports messages expected, delivered,
duplicated at the provider, lost, and seconds to recover; a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator import jsonwire  # noqa: E402
from orchestrator.infra.names import RedisKeys  # noqa: E402
from orchestrator.infra.redisclient import connect_redis  # noqa: E402
from orchestrator.infra.settings import Settings  # noqa: E402
from tests.drill_rig import running_rig  # noqa: E402
from tests.fault_drills import (  # noqa: E402
    CI_SETTINGS,
    CI_SIZE,
    DRILLS,
    ISSUE_SIZE,
    DrillReport,
    DrillSize,
    run_drill,
)

# The rig's isolated settings are tuned for tests; the drills run the deployment's defaults.
DEFAULTS = Settings()
DEPLOYED = {
    name: getattr(DEFAULTS, name)
    for name in ("partitions", "batch_wait_ms", "timer_poll_ms", "session_timeout_ms")
}
COLUMNS = (
    ("drill", 40),
    ("expected", 8),
    ("delivered", 9),
    ("duplicated", 10),
    ("lost", 4),
    ("recovered_s", 11),
    ("dead_letters", 12),
    ("passed", 6),
)


def table(reports: list[DrillReport]) -> str:
    """The reports as a fixed-width table."""
    lines = [" ".join(name.ljust(width) for name, width in COLUMNS)]
    for report in reports:
        row = report.as_dict()
        lines.append(" ".join(str(row[name]).ljust(width) for name, width in COLUMNS))
    return "\n".join(lines)


async def mark_bytes(settings: Settings) -> int:
    """Mean Redis bytes of a delivery mark (`{m:<message_id>}`, kept 8 days: a sizing input)."""
    redis = connect_redis(settings)
    try:
        pattern = RedisKeys(settings.redis_prefix).delivery_mark("*")
        marks = [k async for k in redis.scan_iter(match=pattern, count=1000)]
        sizes = [int(await redis.memory_usage(k, samples=0) or 0) for k in marks[:1000]]
    finally:
        await redis.aclose()
    return round(sum(sizes) / len(sizes)) if sizes else 0


async def main(size: DrillSize, names: list[str], quick: bool) -> list[DrillReport]:
    """Run the drills named on one rig, printing each as it ends."""
    reports: list[DrillReport] = []
    overrides = {**DEPLOYED, **(CI_SETTINGS if quick else {})}
    with tempfile.TemporaryDirectory(prefix="orchestrator-drills-") as logs:
        async with running_rig(DEFAULTS, Path(logs), overrides) as rig:
            for name in names:
                print(f"drill: {name} ...", file=sys.stderr, flush=True)
                report = await run_drill(rig, name, size)
                print(f"  {report.as_dict()}", file=sys.stderr, flush=True)
                reports.append(report)
                await rig.keep_workers_running()
            print(f"delivery mark: {await mark_bytes(rig.settings)} bytes", file=sys.stderr)
    return reports


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="the CI sizes and fast retries (about 3 minutes)"
    )
    parser.add_argument("--drill", action="append", choices=list(DRILLS), help="run only these")
    args = parser.parse_args()
    chosen = CI_SIZE if args.quick else ISSUE_SIZE
    results = asyncio.run(main(chosen, args.drill or list(DRILLS), args.quick))
    print(table(results))
    print(
        jsonwire.dumps({"size": chosen.__dict__, "drills": [r.as_dict() for r in results]}).decode()
    )
    sys.exit(0 if all(r.passed for r in results) else 1)
