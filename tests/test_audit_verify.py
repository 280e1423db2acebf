"""`audit verify` names the first altered record: changed, deleted, newest deleted, checkpoint."""

from __future__ import annotations

from orchestrator.audit.checkpoint import take_checkpoint
from orchestrator.audit.db import connection
from orchestrator.audit.verify import verify
from orchestrator.infra.settings import Settings
from tests.audit_harness import (
    customer_records,
    fresh_database,
    produce,
    put_back_row,
    running_sink,
    take_row,
    wait_consumed,
)
from tests.runtime_harness import isolated_settings, prepare


async def _broken(url: str, customer: str | None = None) -> str | None:
    async with connection(url) as conn:
        report = await verify(conn, customer)
    return None if report.broken is None else str(report.broken)


async def test_verify_names_changed_deleted_and_newest_deleted_rows(
    infrastructure: Settings,
) -> None:
    async with fresh_database(infrastructure) as url:
        settings = isolated_settings(infrastructure, database_url=url)
        topics = await prepare(settings)
        records = [r for c in ("v1", "v2") for r in customer_records(c, 6)]
        await produce(
            settings, topics.interactions, [(r.customer_id, r.to_json()) for r in records]
        )
        async with running_sink(settings):
            await wait_consumed(settings, url, topics.interactions)
        assert await _broken(url) is None
        async with connection(url) as conn:
            # 1. A changed row: the chain names it.
            await conn.execute(
                "UPDATE audit_records SET channel = 'email' WHERE record_id = 'send:v1-m3'"
            )
            problem = await _broken(url)
            assert problem is not None and "send:v1-m3" in problem and "changed" in problem
            await conn.execute(
                "UPDATE audit_records SET channel = 'sms' WHERE record_id = 'send:v1-m3'"
            )
            assert await _broken(url) is None
            # 2. A deleted row in the middle: the record after the gap is named.
            saved = await take_row(conn, "in:v2-e2")
            problem = await _broken(url)
            assert problem is not None and "send:v2-m3" in problem and "#3" in problem
            assert "missing" in problem
            await put_back_row(conn, saved)
            assert await _broken(url) is None
            # 3. The newest row deleted, by itself: the chain's head names it.
            saved = await take_row(conn, "send:v2-m5")
            problem = await _broken(url)
            assert problem is not None and "its head says #6" in problem
            # ...and with the head rewritten too: the checkpoint the sink took at its stop.
            await conn.execute(
                "UPDATE audit_chain_heads SET seq = 5, hash = (SELECT hash FROM audit_records"
                " WHERE chain_id = 'v2' AND seq = 5) WHERE chain_id = 'v2'"
            )
            problem = await _broken(url)
            assert (
                problem is not None and "v2" in problem and "newest records are missing" in problem
            )
            assert "checkpoint 1 says #6" in problem
            assert await _broken(url, "v1") is None
            await put_back_row(conn, saved)
            await conn.execute(
                "UPDATE audit_chain_heads SET seq = 6, hash = (SELECT hash FROM audit_records"
                " WHERE chain_id = 'v2' AND seq = 6) WHERE chain_id = 'v2'"
            )
            assert await _broken(url) is None
            # A checkpoint of nothing new is not taken.
            assert await take_checkpoint(conn) is None
            # 4. A whole customer deleted.
            await conn.execute("DELETE FROM audit_records WHERE chain_id = 'v1'")
            problem = await _broken(url)
            assert problem is not None and "v1: every record is missing" in problem
