"""Audit sinks sharded by partition (`--shard I/N`) store the topic between them exactly once:
through a kill -9 of one shard, a change of layout, two sinks given the same partition,
and two sinks meeting on one chain."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest

from orchestrator import jsonwire
from orchestrator.audit.checkpoint import take_checkpoint
from orchestrator.audit.db import connection
from orchestrator.audit.offsets import PartitionTakenError, stored_offsets
from orchestrator.audit.personal import PersonalFields
from orchestrator.audit.projection import StoredRecord
from orchestrator.audit.sink import AuditSink
from orchestrator.audit.store import SourceRecord, commit_batch, decode_batch
from orchestrator.audit.verify import verify
from orchestrator.contracts.deploys import OperatorAction
from orchestrator.contracts.interactions import KeyAction, KeyInteraction, OperatorInteraction
from orchestrator.errors import ConfigurationError
from orchestrator.infra.settings import Settings, load_settings
from orchestrator.infra.shard import PartitionShard
from orchestrator.measure.journeys import JourneyProjection
from tests.audit_harness import (
    SinkProcess,
    count_rows,
    customer_records,
    fresh_database,
    produce,
    running_sink,
    stored_ids,
    wait_consumed,
)
from tests.measure_scenario import Scenario, assert_figures_exact, scenario_records
from tests.runtime_harness import isolated_settings, prepare, topic_size, wait_until

PARTITIONS = 6


def _shard(settings: Settings, shard: str) -> Settings:
    return settings.model_copy(update={"audit_sink_shard": shard})


def _operator_values(run: str) -> list[tuple[str, bytes]]:
    """Operator records as the control plane keys them: a journey's by `journey:<id>`, an
    API key's by `key:<id>` (chains of their own, beside the customers')."""
    values: list[tuple[str, bytes]] = []
    for n in range(24):
        journey = f"{run}-j{n % 3}"
        record = OperatorInteraction(
            record_id=f"op:{run}:{n}", action=OperatorAction.DEPLOY,
            at=f"2026-06-{1 + n:02d}T09:00:00Z", operator="ops", journey=journey,
            status="active", digest=f"d{n}", version=n // 3 + 1,
        )  # fmt: skip
        values.append((f"journey:{journey}", record.to_json()))
    for n in range(6):
        key = KeyInteraction(
            record_id=f"key:{run}:{n}", action=KeyAction.CREATE, at="2026-06-02T09:00:00Z",
            operator="admin", key_id=f"k{n % 2}", key_name=f"key {n}", role="operator",
        )  # fmt: skip
        values.append((f"key:k{n % 2}", key.to_json()))
    return values


def _values(scenario: Scenario) -> list[tuple[str, bytes]]:
    return [(r["customer_id"], jsonwire.dumps(r)) for r in scenario.records]


async def _assert_stored_once_and_intact(url: str, record_ids: set[str]) -> None:
    """Each record stored once, every chain intact, a checkpoint over all the heads."""
    assert await stored_ids(url) == sorted(record_ids)
    async with connection(url) as conn:
        await take_checkpoint(conn)
        report = await verify(conn)
    assert report.broken is None, str(report.broken)
    assert report.records == len(record_ids) and report.checkpoint is not None


async def _shard_progress(url: str, topic: str, shard: PartitionShard, total: int) -> bool:
    """Whether `shard` has stored some, but not all, of its `total` offsets."""
    async with connection(url) as conn:
        offsets = await stored_offsets(conn, topic)
    done = sum(offset for p, offset in offsets.items() if shard.owns(p))
    return 0 < done < total


async def test_two_shards_store_each_record_once_through_a_kill_9_of_one(
    infrastructure: Settings, tmp_path: Path
) -> None:
    scenario = scenario_records(120)
    async with fresh_database(infrastructure) as url:
        settings = isolated_settings(
            infrastructure, database_url=url, audit_batch_max=10, partitions=PARTITIONS
        )
        topics = await prepare(settings)
        values = _values(scenario) + _operator_values("op")
        record_ids = {jsonwire.loads(value)["record_id"] for _, value in values}
        half = len(values) // 2
        # The second half comes twice (an at-least-once producer's redelivery).
        await produce(settings, topics.interactions, values[:half])
        shard_1 = PartitionShard(1, 2)
        owned = [p for p in range(PARTITIONS) if shard_1.owns(p)]
        async with connection(url) as conn:
            assert await stored_offsets(conn, topics.interactions) == {}
        log_0, log_1 = tmp_path / "shard-0.log", tmp_path / "shard-1.log"
        first = SinkProcess(_shard(settings, "0/2"), log_0)
        second = SinkProcess(_shard(settings, "1/2"), log_1)
        try:
            ends = await topic_size(settings, topics.interactions, owned)
            # Mid-stream: shard 1 has committed some batches of its partitions, not all.
            await wait_until(
                lambda: _shard_progress(url, topics.interactions, shard_1, ends),
                "shard 1/2's first batches",
            )
            second.kill()
            assert await _shard_progress(url, topics.interactions, shard_1, ends)
            # Shard 0 stores on alone meanwhile; shard 1 restarts from its stored offsets.
            await produce(settings, topics.interactions, values[half:] + values[half:])
            second = SinkProcess(_shard(settings, "1/2"), log_1)
            await wait_consumed(settings, url, topics.interactions)
        finally:
            exits = (first.terminate(), second.terminate())
        assert exits == (0, 0), log_0.read_text() + log_1.read_text()
        # Each shard stored only its own partitions.
        async with connection(url) as conn:
            cur = await conn.execute("SELECT DISTINCT source_partition FROM audit_records")
            assert {int(r[0]) for r in await cur.fetchall()} == set(range(PARTITIONS))
        assert "partitions 1,3,5 of 6" in log_1.read_text()
        assert "partitions 0,2,4 of 6" in log_0.read_text()
        await _assert_stored_once_and_intact(url, record_ids)
        await assert_figures_exact(url, scenario)


async def test_a_changed_layout_resumes_each_partition_from_its_stored_offset(
    infrastructure: Settings,
) -> None:
    scenario = scenario_records(45)
    async with fresh_database(infrastructure) as url:
        settings = isolated_settings(
            infrastructure, database_url=url, audit_batch_max=25, partitions=PARTITIONS
        )
        topics = await prepare(settings)
        values = _values(scenario) + _operator_values("layout")
        # In topic order: a customer's records reach the projection in the order produced.
        cut = len(values) // 3
        thirds = [values[:cut], values[cut : 2 * cut], values[2 * cut :]]
        # Each layout stores what is on the topic, then stops; the next one takes over.
        for third, layout in zip(thirds, ("0/2 1/2", "0/3 1/3 2/3", "0/1"), strict=True):
            await produce(settings, topics.interactions, third)
            async with contextlib.AsyncExitStack() as stack:
                for shard in layout.split():
                    await stack.enter_async_context(
                        running_sink(_shard(settings, shard), [JourneyProjection()])
                    )
                await wait_consumed(settings, url, topics.interactions)
        await _assert_stored_once_and_intact(
            url, {jsonwire.loads(value)["record_id"] for _, value in values}
        )
        await assert_figures_exact(url, scenario)


async def test_two_sinks_that_own_one_partition_cannot_both_store_it(
    infrastructure: Settings,
) -> None:
    personal = PersonalFields.from_setting(infrastructure.audit_personal_fields)
    records = customer_records("t1", 20)
    first = await decode_batch(
        [SourceRecord(0, n, r.to_json()) for n, r in enumerate(records[:10])]
    )
    later = await decode_batch(
        [SourceRecord(0, 10 + n, r.to_json()) for n, r in enumerate(records[10:])]
    )
    async with fresh_database(infrastructure) as url, connection(url) as conn:
        stored = await commit_batch(conn, "interactions", first, personal, {})
        assert stored.next_offsets == {0: 10}
        # A second sink that started before that batch committed saw no offset stored: its
        # own next batch of the partition is refused whole, nothing of it kept.
        with pytest.raises(PartitionTakenError, match="partition 0 of interactions was stored"):
            await commit_batch(conn, "interactions", later, personal, {})
        assert await count_rows(url) == 10
        with pytest.raises(PartitionTakenError, match="stored up to offset 10"):
            await commit_batch(conn, "interactions", later, personal, {0: 5})
        # A batch whose earlier attempt committed (its connection dropped before the answer)
        # is no conflict: its offsets are where this attempt would put them.
        again = await commit_batch(conn, "interactions", first, personal, {})
        assert again.stored == 0 and again.duplicates == 10
        await commit_batch(conn, "interactions", later, personal, {0: 10})
        assert await stored_offsets(conn, "interactions") == {0: 20}
        # Offsets deleted by hand under a running sink: it stops rather than guess.
        await conn.execute("DELETE FROM audit_offsets")
        with pytest.raises(PartitionTakenError, match="has no stored offset any more"):
            await commit_batch(conn, "interactions", later, personal, {0: 20})
        assert await count_rows(url) == 20
        assert (await verify(conn)).broken is None


class HeldOpen:
    """A projection that keeps its batch's transaction open until `release` is set."""

    name = "held-open"

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def apply(
        self, conn: psycopg.AsyncConnection[tuple[Any, ...]], records: Sequence[StoredRecord]
    ) -> None:
        self.reached.set()
        await self.release.wait()


async def test_one_chain_in_two_partitions_still_chains_when_two_sinks_meet_on_it(
    infrastructure: Settings,
) -> None:
    # Not what our producers do (they key by the chain), but a foreign producer may: the
    # first records of one customer in partitions 0 and 1, stored by two sinks at once.
    personal = PersonalFields.from_setting(infrastructure.audit_personal_fields)
    records = customer_records("x1", 12)
    left = await decode_batch([SourceRecord(0, n, r.to_json()) for n, r in enumerate(records[:6])])
    right = await decode_batch([SourceRecord(1, n, r.to_json()) for n, r in enumerate(records[6:])])
    held = HeldOpen()
    async with (
        fresh_database(infrastructure) as url,
        connection(url) as first,
        connection(url) as second,
    ):
        # Both batches find chain x1 new; the first starts it and stays open.
        storing = asyncio.create_task(
            commit_batch(first, "interactions", left, personal, {}, projections=[held])
        )
        await asyncio.wait_for(held.reached.wait(), 30)
        racing = asyncio.create_task(commit_batch(second, "interactions", right, personal, {}))
        await wait_until(lambda: _waits_on_a_lock(url, second.info.backend_pid), "a lock wait")
        held.release.set()
        await storing
        await racing
        async with connection(url) as conn:
            cur = await conn.execute(
                "SELECT seq, source_partition FROM audit_records WHERE chain_id = 'x1' ORDER BY seq"
            )
            rows = await cur.fetchall()
            report = await verify(conn)
    assert [seq for seq, _ in rows] == list(range(1, 13))
    assert [p for _, p in rows] == [0] * 6 + [1] * 6
    assert report.broken is None and report.records == 12


async def _waits_on_a_lock(url: str, pid: int) -> bool:
    async with connection(url) as conn:
        cur = await conn.execute(
            "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", (pid,)
        )
        row = await cur.fetchone()
    return bool(row and row[0])


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("2/2", "shard numbers run from 0 to 1 for 2 shards"),
        ("0/0", "has no shards"),
        ("1", "is not a shard"),
        ("-1/2", "is not a shard"),
        ("a/b", "is not a shard"),
    ],
)
def test_a_bad_shard_is_refused_with_what_to_write(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as raised:
        PartitionShard.parse(text)
    assert "write it as I/N" in str(raised.value)
    with pytest.raises(
        ConfigurationError, match=re.escape(f"ORCHESTRATOR_AUDIT_SINK_SHARD={text}")
    ):
        load_settings(audit_sink_shard=text)


def test_the_shard_flag_is_checked_before_the_sink_starts() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "audit-sink", "--shard", "3/2"],
        env={**os.environ, "ORCHESTRATOR_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/x"},
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "argument --shard: '3/2': shard numbers run from 0 to 1" in done.stderr
    assert "write it as I/N" in done.stderr


def test_a_shard_owns_the_partitions_with_its_remainder() -> None:
    shards = [PartitionShard.parse(f"{i}/3") for i in range(3)]
    assert [s.of(range(8)) for s in shards] == [[0, 3, 6], [1, 4, 7], [2, 5]]
    assert str(PartitionShard.parse(" 1 / 3 ")) == "1/3"


async def test_a_shard_that_owns_no_partition_says_how_many_sinks_fit(
    infrastructure: Settings,
) -> None:
    async with fresh_database(infrastructure) as url:
        settings = isolated_settings(infrastructure, database_url=url, partitions=4)
        await prepare(settings)
        with pytest.raises(ConfigurationError, match=r"owns no partition .* run at most 4 sinks"):
            async with AuditSink(_shard(settings, "5/8")):
                pass
