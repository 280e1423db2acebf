"""`orchestrator db upgrade`, `audit-sink`, `audit query|timeline|export|verify|checkpoint`
and `customers erase`: the audit store's commands (the logic is in `orchestrator.audit`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from orchestrator import jsonwire
from orchestrator.audit.checkpoint import take_checkpoint
from orchestrator.audit.db import connection, require_schema, upgrade
from orchestrator.audit.erasure import erase_customer
from orchestrator.audit.export import ExportFormat, chunked, export_header, export_lines
from orchestrator.audit.personal import PersonalFields
from orchestrator.audit.query import (
    TIMELINE_KINDS,
    AuditFilter,
    query_page,
    stream_records,
)
from orchestrator.audit.retention import apply_retention
from orchestrator.audit.sink import AuditSink
from orchestrator.audit.verify import verify
from orchestrator.control.records import erasure_record, send_records
from orchestrator.errors import ConfigurationError, OrchestratorError
from orchestrator.infra.clock import ScaledClock
from orchestrator.infra.gcpolicy import collect_garbage_less_often
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.outage import QuietRepeats, StoppedWhileWaitingError
from orchestrator.infra.redisclient import connect_redis
from orchestrator.infra.settings import Settings, load_settings
from orchestrator.measure.registry import projections
from orchestrator.timefmt import format_instant, parse_duration

__all__ = [
    "audit_sink",
    "checkpoint",
    "db_upgrade",
    "erase",
    "export",
    "query",
    "retention",
    "verify_store",
]

log = logging.getLogger(__name__)


class AuditFailedError(OrchestratorError):
    """`audit verify` found the store altered; the message names the record."""


def _instant(text: str | None, flag: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise ConfigurationError(
            f"{flag} {text!r} is not an ISO 8601 instant with a zone: "
            "give e.g. 2026-05-01T00:00:00Z"
        )
    return value


def _filter(args: argparse.Namespace) -> AuditFilter:
    return AuditFilter(
        customer=args.customer,
        since=_instant(args.since, "--from"),
        until=_instant(args.until, "--until"),
        channel=args.channel,
        journey=args.journey,
        kinds=tuple(args.kind or ()),
        directions=tuple(args.direction or ()),
    )


def _run(settings: Settings, work: Callable[[Any], Awaitable[int]]) -> int:
    async def main() -> int:
        async with connection(settings.database_url) as conn:
            await require_schema(conn)
            return await work(conn)

    return asyncio.run(main())


def db_upgrade(args: argparse.Namespace) -> int:
    """Apply the schema migrations not applied yet."""
    settings = load_settings()

    async def main() -> int:
        async with connection(settings.database_url) as conn:
            applied = await upgrade(conn)
        for migration in applied:
            print(f"applied {migration.version:04d}_{migration.name}")
        if not applied:
            print("the schema is up to date")
        return 0

    return asyncio.run(main())


def audit_sink(args: argparse.Namespace) -> int:
    """Run the audit sink until SIGTERM or SIGINT."""
    settings = load_settings(**({"audit_sink_shard": args.shard} if args.shard else {}))
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.log_level != "debug":
        logging.getLogger("aiokafka").setLevel(logging.WARNING)
        for handler in logging.getLogger().handlers:
            handler.addFilter(QuietRepeats(("aiokafka",)))

    collect_garbage_less_often()

    async def main() -> int:
        sink = AuditSink(settings, projections())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, sink.stop)
        try:
            async with sink:
                await sink.run()
        except StoppedWhileWaitingError as exc:
            log.warning("%s", exc)
        return 0

    return asyncio.run(main())


def query(args: argparse.Namespace) -> int:
    """One page of records as JSON Lines, then the next page's cursor on stderr."""
    settings = load_settings()
    if args.command_name == "timeline":
        flt = AuditFilter(customer=args.customer, kinds=TIMELINE_KINDS)
    else:
        flt = _filter(args)
    personal = PersonalFields.from_setting(settings.audit_personal_fields)

    async def work(conn: Any) -> int:
        page = await query_page(
            conn, flt, personal, limit=args.limit, cursor=args.cursor,
            newest_first=args.newest_first,
        )  # fmt: skip
        for record in page.records:
            print(jsonwire.dumps_line(record.to_dict()))
        if page.next_cursor:
            print(f"next page: --cursor {page.next_cursor}", file=sys.stderr)
        return 0

    return _run(settings, work)


def export(args: argparse.Namespace) -> int:
    """Every matching record as JSONL or CSV, streamed to a file or stdout."""
    settings = load_settings()
    flt = _filter(args)
    personal = PersonalFields.from_setting(settings.audit_personal_fields)

    out: TextIO = (
        open(args.output, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed below
        if args.output
        else sys.stdout
    )
    fmt: ExportFormat = "csv" if args.format == "csv" else "jsonl"
    out.write(export_header(fmt))

    async def work(conn: Any) -> int:
        count = 0
        stream = stream_records(conn, flt, personal, newest_first=args.newest_first)
        async for chunk in chunked(stream):
            out.write(export_lines(fmt, chunk))
            count += len(chunk)
        print(f"exported {count} records", file=sys.stderr)
        return 0

    try:
        return _run(settings, work)
    finally:
        if out is not sys.stdout:
            out.close()


def verify_store(args: argparse.Namespace) -> int:
    """Check the chains; exit 1 naming the first broken record."""
    settings = load_settings()
    since, until = _instant(args.since, "--from"), _instant(args.until, "--until")

    async def work(conn: Any) -> int:
        report = await verify(conn, args.customer, since, until)
        if report.broken is not None:
            raise AuditFailedError(
                f"the audit store was altered: {report.broken} "
                f"({report.records} records of {report.chains} chains read up to it)"
            )
        print(f"verified {report.records} records in {report.chains} chains: intact")
        for run in report.retentions:
            print(
                f"retention {run.retention_id} ({run.ran_at.isoformat()}) by {run.operator} "
                f"dropped {run}: those chains start at their markers"
            )
        if report.checkpoint is not None:
            print(
                f"newest checkpoint {report.checkpoint.checkpoint_id} "
                f"({report.checkpoint.taken_at.isoformat()}): digest "
                f"{report.checkpoint.digest.hex()}"
            )
        return 0

    return _run(settings, work)


def retention(args: argparse.Namespace) -> int:
    """Drop the monthly partitions older than --older-than, marking the chains they cut."""
    settings = load_settings()
    try:
        age = parse_duration(args.older_than)
    except ValueError as exc:
        raise ConfigurationError(f"--older-than: {exc}") from exc
    clock = ScaledClock(settings.clock_speed, settings.clock_origin)
    cutoff = datetime.fromtimestamp(clock.now() - age, UTC)
    operator = args.operator or settings.operator

    async def work(conn: Any) -> int:
        run = await apply_retention(conn, cutoff, operator, dry_run=args.dry_run)
        if run.retention_id is None:
            print(f"would drop {run} (dry run: nothing dropped)")
        else:
            print(
                f"retention {run.retention_id} by {run.operator}: dropped {run}; "
                f"{run.chains} chains now start at a retention marker"
            )
        return 0

    return _run(settings, work)


def checkpoint(args: argparse.Namespace) -> int:
    """Checkpoint the chain heads that moved since the last checkpoint."""
    settings = load_settings()

    async def work(conn: Any) -> int:
        taken = await take_checkpoint(conn)
        if taken is None:
            print("no chain moved since the last checkpoint")
        else:
            print(
                f"checkpoint {taken.checkpoint_id}: {taken.chains} chain heads, "
                f"digest {taken.digest.hex()}"
            )
        return 0

    return _run(settings, work)


def erase(args: argparse.Namespace) -> int:
    """Crypto-shred a customer's personal fields, delete their live state, record it."""
    settings = load_settings()
    operator = args.operator or settings.operator
    clock = ScaledClock(settings.clock_speed, settings.clock_origin)

    async def work(conn: Any) -> int:
        redis = connect_redis(settings)
        try:
            done = await erase_customer(
                conn, redis, RedisKeys(settings.redis_prefix), args.customer_id, operator
            )
        finally:
            await redis.aclose()
        # After the erasure, so a record never claims an erasure that did not happen; if
        # Kafka fails here the command fails, and running it again (idempotent) records it.
        at = format_instant(clock.now())
        await send_records(settings, [erasure_record(done.customer_id, at, operator)])
        print(
            f"erased {done.customer_id}: data key destroyed ({done.records} stored records now "
            f"unreadable in their personal fields), {done.redis_keys} Redis entries deleted"
        )
        return 0

    return _run(settings, work)
