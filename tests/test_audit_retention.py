"""Retention drops whole months, leaves each cut chain a marker; verify still passes, and still
names rows deleted by hand."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from orchestrator.audit.checkpoint import take_checkpoint
from orchestrator.audit.db import connection
from orchestrator.audit.offsets import stored_offsets
from orchestrator.audit.personal import PersonalFields
from orchestrator.audit.retention import apply_retention
from orchestrator.audit.store import SourceRecord, commit_batch, decode_batch
from orchestrator.audit.verify import verify
from orchestrator.contracts.events import EventRecord
from orchestrator.contracts.interactions import InboundInteraction
from orchestrator.infra.settings import Settings
from tests.audit_harness import fresh_database, put_back_row, take_row
from tests.runtime_harness import wait_until

PERSONAL = PersonalFields.from_setting(Settings().audit_personal_fields)
CUTOFF = datetime(2026, 5, 15, tzinfo=UTC)

# Chain order is storage order; each record's month is its partition.
CHAINS = {
    "r1": ["2026-04-03", "2026-04-20", "2026-05-02", "2026-05-09", "2026-05-30", "2026-06-01"],
    # Its last record is older than the cutoff but stored after newer ones (a late event).
    "r2": ["2026-04-04", "2026-05-05", "2026-06-06", "2026-04-28"],
    "r3": ["2026-04-07", "2026-04-08"],  # wholly in the dropped month
}


def _inbound(customer: str, n: int, day: str) -> InboundInteraction:
    at = f"{day}T10:00:00Z"
    event = EventRecord(
        event_id=f"{customer}-e{n}", customer_id=customer, name="order.placed",
        occurred_at=at, properties={"email": f"{customer}@example.com"},
    )  # fmt: skip
    return InboundInteraction(
        record_id=f"in:{customer}-e{n}", at=at, received_at=at, customer_id=customer, event=event
    )


async def _store(conn: Any, records: list[InboundInteraction], offset: int) -> None:
    batch = [SourceRecord(0, offset + i, r.to_json()) for i, r in enumerate(records)]
    offsets = await stored_offsets(conn, "interactions")
    await commit_batch(conn, "interactions", await decode_batch(batch), PERSONAL, offsets)


async def _broken(conn: Any) -> str | None:
    report = await verify(conn)
    return None if report.broken is None else str(report.broken)


async def test_retention_drops_the_oldest_month_and_verify_still_passes(
    infrastructure: Settings,
) -> None:
    async with fresh_database(infrastructure) as url, connection(url) as conn:
        records = [_inbound(c, n, day) for c, days in CHAINS.items() for n, day in enumerate(days)]
        await _store(conn, records, 0)
        await take_checkpoint(conn)  # it saw r3's head, which retention will drop
        assert await _broken(conn) is None

        dry = await apply_retention(conn, CUTOFF, "dpo@example.com", dry_run=True)
        assert dry.retention_id is None and dry.partitions == ("audit_records_2026_04",)
        assert (dry.records, dry.chains) == (6, 3)
        assert await _count(conn) == 12

        done = await apply_retention(conn, CUTOFF, "dpo@example.com")
        assert done.retention_id == 1 and done.partitions == ("audit_records_2026_04",)
        assert (done.records, done.chains) == (6, 3)
        assert await _count(conn) == 6
        report = await verify(conn)
        assert report.broken is None and report.records == 6
        assert [(r.retention_id, r.operator) for r in report.retentions] == [(1, "dpo@example.com")]
        # A second run finds nothing older: nothing changes, and it is recorded as well.
        again = await apply_retention(conn, CUTOFF, "dpo@example.com")
        assert again.partitions == () and again.records == 0
        # New records continue each chain from its marker, a wholly dropped one too.
        await _store(conn, [_inbound("r1", 6, "2026-07-01"), _inbound("r3", 2, "2026-07-02")], 12)
        assert await _broken(conn) is None

        # Deleting by hand is still named: a row of a kept month, in r1...
        saved = await take_row(conn, "in:r1-e3")
        problem = await _broken(conn)
        assert problem is not None and "in:r1-e4" in problem and "#4" in problem, problem
        await put_back_row(conn, saved)
        assert await _broken(conn) is None
        # ... one kept below r2's marker (stored before the late record retention dropped) ...
        saved = await take_row(conn, "in:r2-e1")
        problem = await _broken(conn)
        assert problem is not None and "r2" in problem and "retention marker" in problem, problem
        await put_back_row(conn, saved)
        assert await _broken(conn) is None
        # ... and a whole month dropped by hand, without retention's markers.
        await conn.execute("DROP TABLE audit_records_2026_05")
        problem = await _broken(conn)
        assert problem is not None and "missing" in problem, problem


async def _count(conn: Any) -> int:
    cur = await conn.execute("SELECT count(*) FROM audit_records")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def test_a_batch_meeting_a_retention_run_waits_for_it(infrastructure: Settings) -> None:
    async with fresh_database(infrastructure) as url, connection(url) as conn:
        await _store(conn, [_inbound("w1", 0, "2026-04-03")], 0)
        async with connection(url) as retention:
            # A retention run holds its lock, about to drop April; a batch with a late April
            # record arrives meanwhile.
            await retention.execute("BEGIN")
            await retention.execute("LOCK TABLE audit_records IN SHARE ROW EXCLUSIVE MODE")
            batch = asyncio.create_task(_store(conn, [_inbound("w1", 1, "2026-04-04")], 1))

            async def batch_waits() -> bool:
                cur = await retention.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
                row = await cur.fetchone()
                return bool(row and row[0])

            await wait_until(batch_waits, "the batch waiting for the retention run's lock")
            await retention.execute("DROP TABLE audit_records_2026_04")
            await retention.execute("COMMIT")
            # It then finds April gone and makes it again, rather than failing on a row
            # with no partition to go to.
            await batch
        cur = await conn.execute("SELECT record_id FROM audit_records")
        assert [r[0] for r in await cur.fetchall()] == ["in:w1-e1"]
