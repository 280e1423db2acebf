"""The audit sink stores every interaction record exactly once, through duplicates and kill -9."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.audit.db import (
    connection,
    current_version,
    migrations,
    require_schema,
    upgrade,
)
from orchestrator.errors import ConfigurationError
from orchestrator.infra.settings import Settings
from tests.audit_harness import (
    SinkProcess,
    count_rows,
    customer_records,
    fresh_database,
    produce,
    running_sink,
    stored_ids,
    wait_consumed,
    wait_stored,
)
from tests.runtime_harness import isolated_settings, prepare, wait_until


async def test_migrations_apply_once(infrastructure: Settings) -> None:
    async with fresh_database(infrastructure) as url, connection(url) as conn:
        assert await current_version(conn) == migrations()[-1].version
        assert await upgrade(conn) == []
        # A database upgraded before 0002 was merged in beside a newer one: 0002 is missing
        # below the newest version applied; the program says so, and an upgrade applies it.
        await conn.execute(
            "DROP TABLE audit_retention_markers, audit_retentions;"
            " DELETE FROM schema_migrations WHERE version = 2"
        )
        with pytest.raises(ConfigurationError, match="without 0002"):
            await require_schema(conn)
        assert [m.version for m in await upgrade(conn)] == [2]
        await require_schema(conn)


async def test_duplicates_and_bad_values_are_stored_once(infrastructure: Settings) -> None:
    async with fresh_database(infrastructure) as url:
        settings = isolated_settings(infrastructure, database_url=url, audit_batch_max=7)
        topics = await prepare(settings)
        records = [r for c in ("a1", "a2", "a3") for r in customer_records(c, 10)]
        values = [(r.customer_id, r.to_json()) for r in records]
        # The runtime's at-least-once producers may write a record twice: same record_id.
        values += [*values[:5], ("a1", b"not json"), ("a2", b'{"type": "send"}')]
        await produce(settings, topics.interactions, values)
        async with running_sink(settings) as sink:
            await wait_consumed(settings, url, topics.interactions)
        assert sink.stored == 30 and sink.duplicates == 5 and sink.rejected == 2
        assert await stored_ids(url) == sorted(r.record_id for r in records)
        assert await count_rows(url, "audit_rejects") == 2
        # A restart resumes from the stored offsets: nothing is read, or stored, again.
        async with running_sink(settings) as again:
            await wait_consumed(settings, url, topics.interactions)
        assert again.stored == again.duplicates == again.rejected == 0
        assert await count_rows(url) == 30


async def test_kill_9_mid_stream_then_restart_stores_each_record_once(
    infrastructure: Settings, tmp_path: Path
) -> None:
    async with fresh_database(infrastructure) as url:
        settings = isolated_settings(infrastructure, database_url=url, audit_batch_max=200)
        topics = await prepare(settings)
        records = [r for n in range(40) for r in customer_records(f"k{n}", 100)]
        await produce(
            settings, topics.interactions, [(r.customer_id, r.to_json()) for r in records]
        )
        log = tmp_path / "sink.log"
        first = SinkProcess(settings, log)
        try:
            # Mid-stream: some batches committed, most of the topic still to go.
            await wait_until(lambda: _between(url, 1, len(records) // 2), "the first batches")
        finally:
            first.kill()
        assert 0 < await count_rows(url) < len(records)
        second = SinkProcess(settings, log)
        try:
            await wait_consumed(settings, url, topics.interactions)
        finally:
            assert second.terminate() == 0, log.read_text()
        assert await stored_ids(url) == sorted(r.record_id for r in records)
        await wait_stored(url, len(records), "every record")


async def _between(url: str, low: int, high: int) -> bool:
    return low <= await count_rows(url) <= high
