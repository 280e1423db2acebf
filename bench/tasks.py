"""Task figures benchmark: the first call, a second one, one after 1% of customers moved.

    .venv/bin/python bench/tasks.py --customers 20000

Stores `--customers` customers' order histories (an order or two each: placed, a step and
our email, shipped, delivered, a reply now and then; ~9 records a customer) through the
audit store's write path into a fresh database on the local PostgreSQL, then times each
half of `measure_tasks` (`measure/task_cache.py`) for the order task of
`tests/task_histories.py`:

1. the one pass over every record, no cache (`task_reader.full_pass`: what each call cost
   before the cache);
2. the first call: every customer read and their spans kept;
3. a second call with nothing new: no record read, the figures added up from the kept rows;
4. after 1% of the customers gained an order: only they are read again.

Each line gives the wall time (the refresh that reads changed customers, then the figures
added up from the kept rows), this process's CPU, and the customers and records read again;
the last line is a JSON object of the figures. The cached figures are checked against the
one pass at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from orchestrator import jsonwire
from orchestrator.audit.db import connection
from orchestrator.audit.offsets import stored_offsets
from orchestrator.audit.personal import PersonalFields
from orchestrator.audit.store import SourceRecord, commit_batch, decode_batch
from orchestrator.infra.settings import Settings
from orchestrator.journey.tasks import CompiledTask
from orchestrator.measure.task_cache import kept_figures, refresh
from orchestrator.measure.task_reader import full_pass
from orchestrator.measure.tasks import Interaction

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.audit_harness import fresh_database  # noqa: E402
from tests.task_histories import inbound, send, step, task, wire_record  # noqa: E402

Connection = Any
PERSONAL = PersonalFields.from_setting(Settings().audit_personal_fields)
# Records per write transaction while filling the store.
_BATCH = 5000


def order(rng: random.Random, start: float, number: int) -> list[Interaction]:
    """One order: placed, our step and email, shipped, delivered (hours from `start`)."""
    shipped = start + rng.uniform(2, 72)
    delivered = shipped + rng.uniform(12, 120)
    history = [
        inbound(start, "order.completed", number, "web"),
        step(start, "order-updates", "placed"),
        send(start, "order-updates", "placed", "email"),
        inbound(shipped, "order.shipped", number),
        step(shipped, "order-updates", "shipped"),
        send(shipped, "order-updates", "shipped", "email"),
        inbound(delivered, "order.delivered", number),
    ]
    if rng.random() < 0.2:
        history.insert(6, inbound(shipped + 1, "message.replied", channel="email"))
    return history


class Filler:
    """Writes histories through the audit store's write path, records numbered on."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.written: dict[str, int] = {}
        self.offset = 0

    async def add(self, histories: dict[str, list[Interaction]]) -> int:
        values = []
        for customer, history in histories.items():
            first = self.written.get(customer, 0)
            values += [wire_record(customer, first + i, r).to_json() for i, r in enumerate(history)]
            self.written[customer] = first + len(history)
        for start in range(0, len(values), _BATCH):
            chunk = values[start : start + _BATCH]
            batch = [SourceRecord(0, self.offset + i, v) for i, v in enumerate(chunk)]
            self.offset += len(batch)
            offsets = await stored_offsets(self.conn, "interactions")
            decoded = await decode_batch(batch)
            await commit_batch(self.conn, "interactions", decoded, PERSONAL, offsets)
        return len(values)


async def timed(call: Callable[[], Awaitable[Any]]) -> tuple[Any, float, float]:
    """Run `call` once: its result, wall and CPU seconds."""
    started, cpu = time.perf_counter(), time.process_time()
    result = await call()
    return result, time.perf_counter() - started, time.process_time() - cpu


async def phase(conn: Connection, name: str, tasks: list[CompiledTask]) -> dict[str, Any]:
    """One `measure_tasks` call, its two halves timed: the refresh, then the figures."""
    found, read_s, read_cpu = await timed(lambda: refresh(conn, tasks, PERSONAL))
    _, add_s, add_cpu = await timed(lambda: kept_figures(conn, tasks))
    print(
        f"{name:<28} {read_s + add_s:7.3f} s ({read_s:.3f} refresh + {add_s:.3f} figures),"
        f" CPU {read_cpu + add_cpu:.3f} s; read again: {found.stale} customers,"
        f" {found.records} records",
        flush=True,
    )
    return {
        "wall_s": round(read_s + add_s, 3), "refresh_s": round(read_s, 3),
        "figures_s": round(add_s, 3), "cpu_s": round(read_cpu + add_cpu, 3),
        "stale": found.stale, "records_read": found.records,
    }  # fmt: skip


async def run(customers: int, seed: int) -> dict[str, Any]:
    """Fill a fresh store, then measure each call; the figures as a dict."""
    rng = random.Random(seed)
    tasks = [task()]
    figures: dict[str, Any] = {"customers": customers}
    async with fresh_database(Settings()) as url, connection(url) as conn:
        filler = Filler(conn)
        histories = {
            f"c{n:07d}": [r for k in range(rng.choice((1, 1, 2))) for r in
                          order(rng, rng.uniform(0, 600) + 200 * k, 2 * n + k)]
            for n in range(customers)
        }  # fmt: skip
        started = time.perf_counter()
        figures["records"] = await filler.add(histories)
        print(f"stored {figures['records']} records of {customers} customers "
              f"in {time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
        reference, wall, cpu = await timed(lambda: full_pass(conn, tasks, PERSONAL))
        print(f"{'one pass, no cache':<28} {wall:7.3f} s, CPU {cpu:.3f} s", flush=True)
        figures["full_pass"] = {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3)}
        figures["first_call"] = await phase(conn, "first call", tasks)
        figures["second_call"] = await phase(conn, "second call, nothing new", tasks)
        moved = rng.sample(sorted(histories), max(1, customers // 100))
        await filler.add({c: order(rng, 900, 2 * customers + i) for i, c in enumerate(moved)})
        figures["after_1_percent"] = await phase(conn, "after 1% gained an order", tasks)
        before = reference[0].completions
        cached = await kept_figures(conn, tasks)
        if cached != await full_pass(conn, tasks, PERSONAL) or cached[0].completions <= before:
            raise SystemExit("the cached figures differ from the one pass's")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(jsonwire.dumps_line(asyncio.run(run(args.customers, args.seed))))


if __name__ == "__main__":
    main()
