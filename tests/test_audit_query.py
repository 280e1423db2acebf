"""Querying the audit store: pages, a journey's timeline, erasure, and index use."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime
from urllib.parse import urlsplit

from orchestrator import jsonwire
from orchestrator.audit.db import connection
from orchestrator.audit.personal import ERASED, PersonalFields
from orchestrator.audit.query import (
    TIMELINE_KINDS,
    AuditFilter,
    StoredRecord,
    query_page,
    select_statement,
    stream_records,
)
from orchestrator.audit.verify import verify
from orchestrator.engine.state import CustomerState
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.settings import Settings
from tests.audit_harness import (
    customer_records,
    fresh_database,
    produce,
    running_sink,
    wait_consumed,
)
from tests.runtime_harness import (
    OffsetClock,
    isolated_settings,
    make_event,
    prepare,
    publish,
    redis_client,
    running_worker,
    wait_all_consumed,
    wait_until,
)
from tests.runtime_scenario import deploy_scenario

PERSONAL = PersonalFields.from_setting(Settings().audit_personal_fields)


async def test_pages_cover_every_record_once_both_ways(infrastructure: Settings) -> None:
    async with fresh_database(infrastructure) as url:
        settings = isolated_settings(infrastructure, database_url=url)
        topics = await prepare(settings)
        records = [r for c in ("p1", "p2", "p3") for r in customer_records(c, 9)]
        await produce(
            settings, topics.interactions, [(r.customer_id, r.to_json()) for r in records]
        )
        async with running_sink(settings):
            await wait_consumed(settings, url, topics.interactions)
        async with connection(url) as conn:
            for newest_first in (False, True):
                seen, cursor = [], None
                while True:
                    page = await query_page(
                        conn, AuditFilter(), PERSONAL, limit=4, cursor=cursor,
                        newest_first=newest_first,
                    )  # fmt: skip
                    seen += page.records
                    if page.next_cursor is None:
                        break
                    cursor = page.next_cursor
                assert sorted(r.record_id for r in seen) == sorted(r.record_id for r in records)
                keys = [(r.at, r.chain_id, r.seq) for r in seen]
                assert keys == sorted(keys, reverse=newest_first)
            sms = await query_page(
                conn, AuditFilter(customer="p2", channel="sms", kinds=("send",)), PERSONAL
            )
            phone = customer_records("p2", 1)[0].event.properties["phone"]
            assert [r.record["content"]["to"] for r in sms.records] == [phone] * 4


async def test_timeline_of_a_full_journey_in_order_and_verify_passes(
    infrastructure: Settings,
) -> None:
    async with fresh_database(infrastructure) as url:
        settings = isolated_settings(infrastructure, database_url=url)
        await prepare(settings)
        await deploy_scenario(settings)
        # The worker lives an hour behind: the journey's timers wait while the test goes on.
        customer, t = "tl-1", time.time()
        profile = {"first_name": "Ada", "email": "ada@example.com", "phone": "+15550002222"}
        events = [
            make_event(customer, "profile.updated", profile, at=t),
            make_event(customer, "signed_up", {"plan": "pro"}, at=t + 1),
        ]
        async with running_worker(settings, OffsetClock(-3600)), running_sink(settings):
            await publish(settings, events)
            await wait_all_consumed(settings)
            welcome = await _timeline_until(url, customer, lambda rs: "send" in rs)
            message_id = next(r.record["message_id"] for r in welcome if r.kind == "send")
            replies = [
                make_event(customer, "message.delivered", {"message_id": message_id}, at=t + 2),
                make_event(customer, "email.replied", {"text": "thanks!"}, at=t + 2.5),
                make_event(customer, "feature.used", {"feature": "editor"}, at=t + 3),
            ]
            await publish(settings, replies)
            await wait_all_consumed(settings)
            timeline = await _timeline_until(url, customer, lambda rs: rs.count("send") >= 2)
        names = [
            r.record["event"]["name"] if r.kind == "inbound" else f"send:{r.record['template']}"
            for r in timeline
        ]
        assert names == [
            "profile.updated", "signed_up", "send:rt_welcome", "message.delivered",
            "email.replied", "feature.used", "send:rt_regular",
        ]  # fmt: skip
        assert timeline[0].record["event"]["properties"]["email"] == "ada@example.com"
        async with connection(url) as conn:
            report = await verify(conn)
        assert report.broken is None and report.records >= len(timeline)


async def _timeline_until(url: str, customer: str, done: object) -> list[StoredRecord]:
    found: list[StoredRecord] = []

    async def check() -> bool:
        async with connection(url) as conn:
            page = await query_page(
                conn, AuditFilter(customer=customer, kinds=TIMELINE_KINDS), PERSONAL, limit=1000
            )
        found[:] = page.records
        return bool(done([r.kind for r in page.records]))  # type: ignore[operator]

    await wait_until(check, f"{customer}'s timeline")
    return found


def _cli(settings: Settings, *args: str) -> str:
    env = {**os.environ, **settings.as_environment()}
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_after_erasure_email_and_phone_appear_nowhere_and_verify_passes(
    infrastructure: Settings,
) -> None:
    async with fresh_database(infrastructure) as url:
        settings = isolated_settings(infrastructure, database_url=url)
        topics = await prepare(settings)
        records = customer_records("er1", 6) + customer_records("keep", 2)
        await produce(
            settings, topics.interactions, [(r.customer_id, r.to_json()) for r in records]
        )
        keys = RedisKeys(settings.redis_prefix)
        secrets = ("er1@example.com", customer_records("er1", 1)[0].event.properties["phone"])
        state = CustomerState("er1", profile={"email": "ER1@example.com", "phone": secrets[1]})
        # The identity index: er1's two addresses, and one that moved on to someone else.
        indexed = {"er1@example.com": "er1", secrets[1]: "er1", "old@example.com": "keep"}
        async with redis_client(settings) as redis:
            await redis.hset(keys.customer("er1"), "state", jsonwire.dumps(state.to_wire()))
            for address, owner in indexed.items():
                await redis.hset(keys.address(address), "customer_id", owner)
        async with running_sink(settings):
            await wait_consumed(settings, url, topics.interactions)
        before = _cli(settings, "audit", "query", "--customer", "er1")
        assert all(secret in before for secret in secrets)
        erased = _cli(settings, "customers", "erase", "er1", "--operator", "dpo")
        assert "erased er1: data key destroyed (6 stored records" in erased
        async with redis_client(settings) as redis:
            assert not await redis.exists(keys.customer("er1"))
            assert not await redis.exists(*(keys.address(a) for a in secrets))
            assert await redis.hget(keys.address("old@example.com"), "customer_id") == b"keep"
        outputs = [
            _cli(settings, "audit", "query", "--customer", "er1"),
            _cli(settings, "audit", "timeline", "er1"),
            _cli(settings, "audit", "export", "--format", "jsonl", "--customer", "er1"),
            _cli(settings, "audit", "export", "--format", "csv"),
            _dump(url),
        ]
        for output in outputs:
            assert "er1" in output and not any(secret in output for secret in secrets)
        assert ERASED in outputs[0]
        async with connection(url) as conn:
            page = await query_page(conn, AuditFilter(customer="keep"), PERSONAL)
            assert page.records[0].record["event"]["properties"]["email"] == "keep@example.com"
            assert [r async for r in stream_records(conn, AuditFilter(), PERSONAL)]
            cur = await conn.execute(
                "SELECT operator FROM audit_erasures WHERE customer_id = 'er1'"
            )
            assert await cur.fetchall() == [("dpo",)]
        assert "intact" in _cli(settings, "audit", "verify")
        # The erasure itself is an interaction record, stored like any other: who and when.
        async with running_sink(settings):
            await wait_consumed(settings, url, topics.interactions)
        async with connection(url) as conn:
            page = await query_page(conn, AuditFilter(customer="er1", kinds=("erasure",)), PERSONAL)
        [stored] = page.records
        assert stored.record["operator"] == "dpo" and stored.record["customer_id"] == "er1"
        assert set(stored.record) == {
            "schema_version", "record_id", "type", "at", "customer_id", "operator",
        }  # fmt: skip
        assert "intact" in _cli(settings, "audit", "verify")


def _dump(url: str) -> str:
    parts = urlsplit(url)
    done = subprocess.run(
        [
            "pg_dump", "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432),
            "-U", parts.username or "postgres", parts.path.lstrip("/"),
        ],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_customer_and_time_window_queries_use_indexes_on_a_million_rows(
    infrastructure: Settings,
) -> None:
    async with fresh_database(infrastructure) as url, connection(url) as conn:
        # A year of monthly partitions, as the sink makes them; 30 s apart, a million rows
        # span about a year.
        for month in range(1, 13):
            following = f"2026-{month + 1:02d}-01" if month < 12 else "2027-01-01"
            await conn.execute(
                f"CREATE TABLE audit_records_2026_{month:02d} PARTITION OF audit_records"
                f" FOR VALUES FROM ('2026-{month:02d}-01') TO ('{following}')".encode()
            )
        await conn.execute(
            "INSERT INTO audit_records SELECT 'c' || (n % 20000), n / 20000 + 1, 'r' || n,"
            " timestamptz '2026-01-01' + n * interval '30 seconds', 'send', 'c' || (n % 20000),"
            " 'outbound', 'sms', 'j' || (n % 7), '{}', '\\x00', '\\x00', 0, n"
            " FROM generate_series(0, 999999) AS n"
        )
        await conn.execute("ANALYZE audit_records")
        plans = []
        for flt in (
            AuditFilter(customer="c42"),
            AuditFilter(customer="c42", kinds=TIMELINE_KINDS),
            AuditFilter(since=_at("2026-03-01T00:00:00Z"), until=_at("2026-03-01T01:00:00Z")),
        ):
            statement, params = select_statement(flt, None, False, 100)
            cur = await conn.execute(b"EXPLAIN " + statement.as_bytes(conn), params)
            plan = "\n".join(r[0] for r in await cur.fetchall())
            plans.append(plan)
            assert "Seq Scan" not in plan, plan
        assert all("Index" in plan for plan in plans)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)
