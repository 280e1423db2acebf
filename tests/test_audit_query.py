"""Querying the audit store: pages, a journey's timeline, erasure, and index use."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from urllib.parse import urlsplit

from orchestrator.audit.db import connection
from orchestrator.audit.personal import ERASED, PersonalFields
from orchestrator.audit.query import (
    TIMELINE_KINDS,
    AuditFilter,
    StoredRecord,
    query_page,
    stream_records,
)
from orchestrator.audit.verify import verify
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
            assert [r.record["content"]["to"] for r in sms.records] == ["+15550001111"] * 4


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
