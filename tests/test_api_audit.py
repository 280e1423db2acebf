"""The audit routes through the API: redaction by role, streamed exports, erasure, and the
journey's exact counts, against a real sink, PostgreSQL, Kafka and Redis."""

from __future__ import annotations

import csv
import dataclasses
import io
from typing import Any

from orchestrator import jsonwire
from orchestrator.api.redaction import MASK
from orchestrator.audit.db import connection
from orchestrator.control.keys import KeyStore
from orchestrator.engine.state import CustomerState
from orchestrator.infra.names import RedisKeys, TopicNames
from orchestrator.infra.settings import Settings
from tests.api_harness import api_client, bearer, role_keys
from tests.api_journeys import JOURNEY, journey_file
from tests.audit_harness import (
    customer_records,
    fresh_database,
    produce,
    running_sink,
    wait_consumed,
)
from tests.runtime_harness import isolated_settings, prepare, redis_client

CUSTOMERS = ("a1", "a2")


def _contact(customer: str) -> tuple[str, str]:
    """The customer's email address and phone number, as `customer_records` writes them."""
    properties = customer_records(customer, 1)[0].event.properties
    return properties["email"], properties["phone"]


async def _stored(settings: Settings, url: str) -> list[Any]:
    """Each customer's records, sends under the test journey; produced and stored."""
    topics = await prepare(settings)
    records = [
        dataclasses.replace(r, journey=JOURNEY) if getattr(r, "journey", None) else r
        for c in CUSTOMERS
        for r in customer_records(c, 9)
    ]
    await produce(settings, topics.interactions, [(r.customer_id, r.to_json()) for r in records])
    async with running_sink(settings):
        await wait_consumed(settings, url, topics.interactions)
    return records


async def test_redaction_export_erasure_and_exact_counts(infrastructure: Settings) -> None:
    async with fresh_database(infrastructure) as url:
        settings = isolated_settings(infrastructure, database_url=url)
        records = await _stored(settings, url)
        keys = await role_keys(settings)
        email, phone = _contact("a1")
        async with redis_client(settings) as redis:
            _, keys["pii"] = await KeyStore(redis, RedisKeys(settings.redis_prefix)).create(
                "operator", "operator with pii", "2026-01-01T00:00:00Z", ["pii"]
            )
            await redis.hset(
                RedisKeys(settings.redis_prefix).customer("a1"),
                "state",
                jsonwire.dumps(
                    CustomerState("a1", profile={"email": email, "plan": "pro"}).to_wire()
                ),
            )
        async with api_client(settings) as client:
            await _check_redaction(client, keys, email)
            await _check_exports(client, keys, len(records), email)
            await _check_exact(client, keys, records, url)
            erased = await client.post("/v1/customers/a1/erase", headers=bearer(keys["admin"]))
            assert erased.status_code == 200 and erased.json()["records"] == 9
            await _check_erased(client, keys, email, phone)
            # The erasure is recorded on `interactions` and stored like any other record.
            async with running_sink(settings):
                await wait_consumed(settings, url, TopicNames(settings.topic_prefix).interactions)
            recorded = await client.get(
                "/v1/audit/records", params={"customer": "a1", "kind": "erasure"},
                headers=bearer(keys["auditor"]),
            )  # fmt: skip
            assert recorded.status_code == 200, recorded.text
            [erasure] = recorded.json()["records"]
            assert erasure["record"]["operator"].startswith("api:")


async def _check_redaction(client: Any, keys: dict[str, str], email: str) -> None:
    """Operators see `***` in personal fields, unless their key has `pii`; auditors see all."""
    seen = {}
    for caller in ("operator", "pii", "auditor"):
        page = await client.get(
            "/v1/audit/records", params={"customer": "a1", "kind": "inbound", "limit": 1},
            headers=bearer(keys[caller]),
        )  # fmt: skip
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["next_cursor"] is not None
        seen[caller] = body["records"][0]["record"]["event"]["properties"]
        profile = await client.get("/v1/customers/a1", headers=bearer(keys[caller]))
        assert profile.status_code == 200, profile.text
        want = MASK if caller == "operator" else email
        assert profile.json()["profile"] == {"email": want, "plan": "pro"}
    assert seen["operator"] == MASK
    assert seen["pii"]["email"] == seen["auditor"]["email"] == email


async def _check_exports(client: Any, keys: dict[str, str], count: int, email: str) -> None:
    """JSONL and CSV exports stream every record, personal fields readable by an auditor."""
    jsonl = await client.get(
        "/v1/audit/export", params={"format": "jsonl"}, headers=bearer(keys["auditor"])
    )
    assert jsonl.status_code == 200 and jsonl.headers["content-type"] == "application/x-ndjson"
    lines = [jsonwire.loads(line) for line in jsonl.text.splitlines()]
    assert len(lines) == count
    assert email in jsonl.text
    exported = await client.get(
        "/v1/audit/export", params={"format": "csv", "customer": "a2"},
        headers=bearer(keys["auditor"]),
    )  # fmt: skip
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == count // 2 and {r["customer_id"] for r in rows} == {"a2"}
    assert jsonwire.loads(rows[0]["record"])["record_id"] == rows[0]["record_id"]
    refused = await client.get("/v1/audit/export", headers=bearer(keys["operator"]))
    assert refused.status_code == 403


async def _check_exact(client: Any, keys: dict[str, str], records: list[Any], url: str) -> None:
    """`?exact=true` counts what the store holds for the journey."""
    deployed = await client.post("/v1/journeys", json=journey_file(), headers=bearer(keys["admin"]))
    assert deployed.status_code == 200, deployed.text
    shown = await client.get(
        f"/v1/journeys/{JOURNEY}", params={"exact": "true"}, headers=bearer(keys["operator"])
    )
    assert shown.status_code == 200, shown.text
    async with connection(url) as conn:
        cur = await conn.execute(
            "SELECT channel, count(*) FROM audit_records WHERE journey = %s AND kind = 'send'"
            " GROUP BY channel",
            (JOURNEY,),
        )
        stored = {r[0]: int(r[1]) for r in await cur.fetchall()}
    sends = sum(1 for r in records if getattr(r, "journey", None) == JOURNEY)
    assert stored == {"sms": sends}
    assert shown.json()["exact"] == {"entered": 0, "sent": stored, "suppressed": {}, "exited": {}}
    live = await client.get(f"/v1/journeys/{JOURNEY}", headers=bearer(keys["operator"]))
    assert live.json()["exact"] is None


async def _check_erased(client: Any, keys: dict[str, str], email: str, phone: str) -> None:
    """After erasure the customer's email and phone appear in no query, timeline or export."""
    answers = [
        await client.get(
            "/v1/audit/records", params={"limit": 1000}, headers=bearer(keys["auditor"])
        ),
        await client.get("/v1/customers/a1/timeline", headers=bearer(keys["auditor"])),
        await client.get("/v1/audit/export", headers=bearer(keys["auditor"])),
        await client.get("/v1/audit/export?format=csv", headers=bearer(keys["auditor"])),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert email not in answer.text and phone not in answer.text
    assert len(answers[1].json()["records"]) == 9
    verified = await client.post("/v1/audit/verify", json={}, headers=bearer(keys["auditor"]))
    assert verified.status_code == 200 and verified.json()["intact"] is True, verified.text
