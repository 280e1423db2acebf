"""Audit store benchmark on the local Kafka and PostgreSQL.

    make bench            # or: .venv/bin/python bench/audit.py --records 100000 --rows 1000000

Measures (1) the audit sink's storage rate (records published to a bench namespace of
`interactions`, then stored exactly once: records/s from the sink's first poll to the last
commit), (2) a customer's timeline latency (p50/p99 of `query_page` over random customers)
with `--rows` rows stored, (3) the export's streaming rate (JSONL and CSV lines/s as
`audit export` streams them, personal fields decrypted). Beside each rate, the microseconds
of this process's CPU per record: on a shared machine the rate follows the load, the CPU
per record much less. The last line is a JSON object of the figures.

To reach `--rows` quickly, the rows the sink stored are copied under new customer ids (same
size, shape, time spread and encrypted fields, each copy with its customer's key), so the
table and its indexes hold as many rows as a store fed by the sink would. The copies' hash
chains are not recomputed: verification is not part of this benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

from orchestrator import jsonwire
from orchestrator.audit.db import connection
from orchestrator.audit.export import ExportFormat, chunked, export_lines
from orchestrator.audit.personal import PersonalFields
from orchestrator.audit.query import TIMELINE_KINDS, AuditFilter, query_page, stream_records
from orchestrator.audit.sink import AuditSink, collect_garbage_less_often
from orchestrator.dev.namespaces import drop_namespaces
from orchestrator.infra.names import TopicNames
from orchestrator.infra.settings import Settings
from orchestrator.infra.topics import ensure_topics

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.audit_harness import customer_records, fresh_database, produce  # noqa: E402

# Every namespace of this run starts with it, so the run can drop them all at the end.
RUN = uuid.uuid4().hex[:8]
# Records per customer the sink stores: a timeline of ~100 interactions, as a busy customer's.
PER_CUSTOMER = 100


async def bench_sink(settings: Settings, records: int) -> tuple[int, float, float]:
    """Publish `records` interaction records, then time the sink storing them all: (stored,
    records/s, microseconds of this process's CPU per record)."""
    await ensure_topics(settings)
    topic = TopicNames(settings.topic_prefix).interactions
    customers = max(1, records // PER_CUSTOMER)
    values = [
        (r.customer_id, r.to_json())
        for n in range(customers)
        for r in customer_records(f"b{n}", PER_CUSTOMER)
    ]
    for start in range(0, len(values), 20_000):
        await produce(settings, topic, values[start : start + 20_000])
    collect_garbage_less_often()  # as `orchestrator audit-sink` does in its process
    sink = AuditSink(settings)
    await sink.start()
    started, cpu = time.perf_counter(), time.process_time()
    task = asyncio.create_task(sink.run())
    try:
        # A benchmark may poll: it measures, it does not synchronise a test.
        while sink.stored + sink.duplicates + sink.rejected < len(values):
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
    finally:
        sink.stop()
        await task
        await sink.close()
    return sink.stored, sink.stored / elapsed, cpu / max(sink.stored, 1) * 1e6


async def fill(url: str, rows: int) -> int:
    """Copy the stored rows under new customer ids until the table holds `rows`."""
    async with connection(url) as conn:
        cur = await conn.execute("SELECT count(*) FROM audit_records")
        base = int((await cur.fetchone() or (0,))[0])
        copies = max(0, -(-rows // max(base, 1)) - 1)
        for g in range(1, copies + 1):
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO audit_customer_keys (customer_id, key)"
                    " SELECT customer_id || %s, key FROM audit_customer_keys"
                    " WHERE customer_id NOT LIKE '%%.r%%'",
                    (f".r{g}",),
                )
                await conn.execute(
                    "INSERT INTO audit_records SELECT chain_id || %s, seq, record_id, at, kind,"
                    " customer_id || %s, direction, channel, journey, body, prev_hash, hash,"
                    " source_partition, source_offset FROM audit_records"
                    " WHERE customer_id NOT LIKE '%%.r%%'",
                    (f".r{g}", f".r{g}"),
                )
        await conn.execute("ANALYZE audit_records")
        cur = await conn.execute("SELECT count(*) FROM audit_records")
        return int((await cur.fetchone() or (0,))[0])


async def bench_timeline(url: str, personal: PersonalFields, samples: int) -> list[float]:
    """Seconds per timeline page (100 records, oldest first) of random customers."""
    async with connection(url) as conn:
        cur = await conn.execute("SELECT customer_id FROM audit_customer_keys")
        customers = [r[0] for r in await cur.fetchall()]
        chosen = random.Random(16).sample(customers, min(samples, len(customers)))
        timings = []
        for customer in chosen:
            started = time.perf_counter()
            page = await query_page(
                conn, AuditFilter(customer=customer, kinds=TIMELINE_KINDS), personal, limit=100
            )
            timings.append(time.perf_counter() - started)
            assert page.records, f"no timeline for {customer}"
        return timings


async def bench_export(
    url: str, personal: PersonalFields, limit: int, fmt: ExportFormat
) -> tuple[int, float, float]:
    """Lines per second streamed from the whole store (up to `limit` records): (records,
    records/s, microseconds of this process's CPU per record)."""
    async with connection(url) as conn:
        count, size = 0, 0
        started, cpu = time.perf_counter(), time.process_time()
        async for chunk in chunked(stream_records(conn, AuditFilter(), personal)):
            size += len(export_lines(fmt, chunk))
            count += len(chunk)
            if count >= limit:
                break
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return count, count / elapsed, cpu / max(count, 1) * 1e6


async def run(args: argparse.Namespace) -> dict[str, float]:
    """Every measurement in one fresh database, dropped at the end."""
    base = Settings()
    async with fresh_database(base) as url:
        settings = base.model_copy(
            update={
                "topic_prefix": f"bench.{RUN}.audit.",
                "redis_prefix": f"bench:{RUN}:audit:",
                "database_url": url,
            }
        )
        personal = PersonalFields.from_setting(settings.audit_personal_fields)
        stored, sink_rate, sink_cpu = await bench_sink(settings, args.records)
        print(f"sink: {stored:,} records stored exactly once at {sink_rate:,.0f} records/s "
              f"({sink_cpu:.1f} us of the sink's CPU per record)")  # fmt: skip
        started = time.perf_counter()
        rows = await fill(url, args.rows)
        print(f"store filled to {rows:,} rows in {time.perf_counter() - started:.0f} s")
        timings = sorted(await bench_timeline(url, personal, args.samples))
        p50 = statistics.median(timings) * 1000
        p99 = timings[max(0, int(len(timings) * 0.99) - 1)] * 1000
        print(f"timeline ({len(timings)} customers, {rows:,} rows): p50 {p50:.1f} ms, "
              f"p99 {p99:.1f} ms")  # fmt: skip
        figures: dict[str, float] = {
            "sink_records": stored,
            "sink_records_per_s": round(sink_rate),
            "sink_cpu_us_per_record": round(sink_cpu, 1),
            "rows": rows,
            "timeline_p50_ms": round(p50, 1),
            "timeline_p99_ms": round(p99, 1),
        }
        formats: tuple[ExportFormat, ...] = ("jsonl", "csv")
        for fmt in formats:
            exported, rate, cpu = await bench_export(url, personal, args.export, fmt)
            print(f"export: {exported:,} {fmt.upper()} records streamed at {rate:,.0f} "
                  f"records/s ({cpu:.1f} us of CPU per record)")  # fmt: skip
            figures[f"export_{fmt}_records"] = exported
            figures[f"export_{fmt}_records_per_s"] = round(rate)
            figures[f"export_{fmt}_cpu_us_per_record"] = round(cpu, 1)
    return figures


def main() -> None:
    """Run the three measurements and print a report, then a JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000, help="records the sink stores")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows for the timeline")
    parser.add_argument("--samples", type=int, default=200, help="customers timed")
    parser.add_argument("--export", type=int, default=300_000, help="records exported")
    args = parser.parse_args()
    try:
        figures = asyncio.run(run(args))
    finally:
        asyncio.run(
            drop_namespaces(Settings(), lambda n: n.startswith(f"bench.{RUN}."), f"bench:{RUN}:*")
        )
    print(jsonwire.dumps(figures).decode())


if __name__ == "__main__":
    main()
