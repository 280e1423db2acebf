"""Audit store benchmark on the local Kafka and PostgreSQL.

    make bench            # or: .venv/bin/python bench/audit.py --records 100000 --rows 1000000

Measures (1) the audit sink's storage rate (records published to a bench namespace of
`interactions`, then stored exactly once by `--shards` sink processes, each `i/N` of the
partitions: records/s from the sinks' first poll to the last commit, and the sinks' CPU per
record, added up over the processes, and the CPU of their PostgreSQL backends and the
database's growth per record), (2) a customer's timeline latency (p50/p99 of `query_page`
over random customers) with `--rows` rows stored, (3) the export's streaming rate (JSONL
and CSV lines/s as `audit export` streams them, personal fields decrypted). Beside each
rate, the microseconds of the measured processes' CPU per record: on a shared machine the
rate follows the load, the CPU per record much less. The last line is a JSON object of the figures.

To reach `--rows` quickly, the rows the sink stored are copied under new customer ids (same
size, shape, time spread and encrypted fields, each copy with its customer's key), so the
table and its indexes hold as many rows as a store fed by the sink would. The copies' hash
chains are not recomputed: verification is not part of this benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import jsonwire
from orchestrator.audit.db import connection
from orchestrator.audit.export import ExportFormat, chunked, export_lines
from orchestrator.audit.personal import PersonalFields
from orchestrator.audit.query import TIMELINE_KINDS, AuditFilter, query_page, stream_records
from orchestrator.audit.sink import AuditSink
from orchestrator.dev.namespaces import drop_namespaces
from orchestrator.infra.gcpolicy import collect_garbage_less_often
from orchestrator.infra.names import TopicNames
from orchestrator.infra.settings import Settings
from orchestrator.infra.topics import ensure_topics, partitions_of

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.audit_harness import customer_records, fresh_database, produce  # noqa: E402
from tests.runtime_harness import topic_size  # noqa: E402

# Every namespace of this run starts with it, so the run can drop them all at the end.
RUN = uuid.uuid4().hex[:8]
# Records per customer the sink stores: a timeline of ~100 interactions, as a busy customer's.
PER_CUSTOMER = 100


@dataclass(frozen=True, slots=True)
class SinkFigures:
    """What `bench_sink` measured: records stored, records/s, and per record the sinks' CPU,
    their PostgreSQL backends' CPU (microseconds) and the database's growth (bytes)."""

    stored: int
    rate: float
    cpu_us: float
    postgres_cpu_us: float
    bytes: float


async def bench_sink(settings: Settings, records: int, shards: int) -> SinkFigures:
    """Publish `records` interaction records, then time `shards` sink processes (`i/shards`)
    storing them all."""
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
    context = multiprocessing.get_context("spawn")
    go, results = context.Event(), context.Queue()
    children = [
        context.Process(
            target=_sink_process,
            args=(settings.model_copy(update={"audit_sink_shard": f"{i}/{shards}"}), go, results),
        )
        for i in range(shards)
    ]
    for child in children:
        child.start()
    # Each sink reports once it has started (connected, partitions assigned and sought).
    for _ in children:
        await asyncio.to_thread(results.get, True, 120)
    size = await _database_size(settings.database_url)
    started = time.perf_counter()
    go.set()
    done = [await asyncio.to_thread(results.get, True, 3600) for _ in children]
    elapsed = time.perf_counter() - started
    for child in children:
        child.join(timeout=60)
    stored = sum(int(n) for n, _, _ in done)
    per_record = 1e6 / max(stored, 1)
    return SinkFigures(
        stored, stored / elapsed, sum(cpu for _, cpu, _ in done) * per_record,
        sum(backend for _, _, backend in done) * per_record,
        (await _database_size(settings.database_url) - size) / max(stored, 1),
    )  # fmt: skip


async def _database_size(url: str) -> int:
    async with connection(url) as conn:
        cur = await conn.execute("SELECT pg_database_size(current_database())")
        return int((await cur.fetchone() or (0,))[0])


def _backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) of the PostgreSQL backend `pid` (a local server's)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _sink_process(settings: Settings, go: Any, results: Any) -> None:
    """One sink in its own process, as `orchestrator audit-sink --shard` runs: it stores
    every record of its partitions, then puts (stored, CPU seconds from `go`, its
    PostgreSQL backend's CPU seconds from `go`) on `results`."""
    collect_garbage_less_often()  # as `orchestrator audit-sink` does in its process
    name = f"bench-sink-{settings.audit_sink_shard}"
    separator = "&" if "?" in settings.database_url else "?"
    settings = settings.model_copy(
        update={"database_url": f"{settings.database_url}{separator}application_name={name}"}
    )

    async def main() -> None:
        sink = AuditSink(settings)
        await sink.start()
        topic = TopicNames(settings.topic_prefix).interactions
        owned = sink.shard.of(await partitions_of(settings.kafka_bootstrap, topic))
        expected = await topic_size(settings, topic, owned)
        async with connection(settings.database_url) as conn:
            cur = await conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
                " AND pid <> pg_backend_pid()",
                (name,),
            )
            backend = int((await cur.fetchone() or (0,))[0])
        results.put((0, 0.0, 0.0))
        await asyncio.to_thread(go.wait)
        cpu, backend_cpu = time.process_time(), _backend_cpu(backend)
        task = asyncio.create_task(sink.run())
        try:
            # A benchmark may poll: it measures, it does not synchronise a test.
            while sink.stored + sink.duplicates + sink.rejected < expected:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
            cpu = time.process_time() - cpu
            backend_cpu = _backend_cpu(backend) - backend_cpu
        finally:
            sink.stop()
            await task
            await sink.close()
        results.put((sink.stored, cpu, backend_cpu))

    asyncio.run(main())


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
        sink = await bench_sink(settings, args.records, args.shards)
        print(f"sink ({args.shards} shard{'s' if args.shards > 1 else ''}): {sink.stored:,} "
              f"records stored exactly once at {sink.rate:,.0f} records/s; per record "
              f"{sink.cpu_us:.1f} us of the sinks' CPU, {sink.postgres_cpu_us:.1f} us of "
              f"their PostgreSQL backends' CPU, {sink.bytes:,.0f} bytes of database")  # fmt: skip
        figures: dict[str, float] = {
            "sink_shards": args.shards,
            "sink_records": sink.stored,
            "sink_records_per_s": round(sink.rate),
            "sink_cpu_us_per_record": round(sink.cpu_us, 1),
            "sink_postgres_cpu_us_per_record": round(sink.postgres_cpu_us, 1),
            "sink_bytes_per_record": round(sink.bytes),
        }
        if args.sink_only:
            return figures
        started = time.perf_counter()
        rows = await fill(url, args.rows)
        print(f"store filled to {rows:,} rows in {time.perf_counter() - started:.0f} s")
        timings = sorted(await bench_timeline(url, personal, args.samples))
        p50 = statistics.median(timings) * 1000
        p99 = timings[max(0, int(len(timings) * 0.99) - 1)] * 1000
        print(f"timeline ({len(timings)} customers, {rows:,} rows): p50 {p50:.1f} ms, "
              f"p99 {p99:.1f} ms")  # fmt: skip
        figures.update({"rows": rows, "timeline_p50_ms": round(p50, 1)})
        figures["timeline_p99_ms"] = round(p99, 1)
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
    parser.add_argument(
        "--shards", type=int, default=1, help="sink processes, each storing its shard i/N"
    )
    parser.add_argument("--sink-only", action="store_true", help="measure the sink alone")
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
