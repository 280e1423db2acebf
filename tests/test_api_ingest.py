"""Ingest through the API: batches, partial rejection, deduplication, the real Segment SDK."""

from __future__ import annotations

import asyncio
import gzip
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from segment.analytics.client import Client

from orchestrator import jsonwire
from orchestrator.infra.settings import Settings
from tests.api_harness import api_client, bearer, role_keys
from tests.api_journeys import journey_file
from tests.api_server import api_server
from tests.runtime_harness import (
    isolated_settings,
    prepare,
    reader,
    running_worker,
    wait_all_consumed,
)


def _event(index: int, customer: str = "c-batch", name: str = "batch.item") -> dict[str, Any]:
    return {
        "event_id": f"batch-{index}",
        "customer_id": f"{customer}-{index % 17}",
        "name": name,
        "occurred_at": "2026-05-01T09:30:00Z",
        "properties": {"index": index},
    }


async def test_a_batch_of_1000_with_one_malformed_sends_999(infrastructure: Settings) -> None:
    settings = isolated_settings(infrastructure)
    topics = await prepare(settings)
    keys = await role_keys(settings)
    events = [_event(i) for i in range(1000)]
    del events[417]["customer_id"]
    async with api_client(settings) as client:
        response = await client.post(
            "/v1/events", json={"events": events}, headers=bearer(keys["publisher"])
        )
        too_many = await client.post(
            "/v1/events", json={"events": [*events, _event(1000)]}, headers=bearer(keys["admin"])
        )
        metrics = (await client.get("/metrics")).text
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] == 999
    assert [r["index"] for r in body["rejected"]] == [417]
    assert "customer_id" in body["rejected"][0]["reason"]
    assert too_many.status_code == 413 and too_many.json()["code"] == "too_many_events"
    assert 'orchestrator_api_events_ingested_total{route="/v1/events"} 999.0' in metrics
    async with reader(settings, topics.events) as log:
        seen = await log.until(lambda values: len(values) >= 999)
    assert sorted(v["properties"]["index"] for v in seen) == [i for i in range(1000) if i != 417]


async def test_oversized_bodies_are_refused_with_413(infrastructure: Settings) -> None:
    settings = isolated_settings(infrastructure, api_max_body_bytes=4096)
    await prepare(settings)
    keys = await role_keys(settings)
    big = {"events": [_event(i) for i in range(100)]}
    bomb = gzip.compress(jsonwire.dumps({"batch": [{"pad": "x" * 100_000}]}))
    async with api_client(settings) as client:
        declared = await client.post("/v1/events", json=big, headers=bearer(keys["publisher"]))
        inflated = await client.post(
            "/v1/batch",
            content=bomb,
            headers={**bearer(keys["publisher"]), "Content-Encoding": "gzip"},
        )
    assert declared.status_code == 413 and declared.json()["code"] == "body_too_large"
    assert inflated.status_code == 413 and inflated.json()["code"] == "body_too_large"


async def test_the_same_event_id_twice_sends_nothing_twice(infrastructure: Settings) -> None:
    settings = isolated_settings(infrastructure)
    topics = await prepare(settings)
    keys = await role_keys(settings)
    customer = f"c-{uuid.uuid4().hex[:6]}"
    event = _event(1, customer=customer, name="api.ordered") | {"customer_id": customer}
    async with api_client(settings) as client:
        deployed = await client.post(
            "/v1/journeys", json=journey_file(), headers=bearer(keys["operator"])
        )
        assert deployed.status_code == 200, deployed.text
        for _ in range(2):
            sent = await client.post("/v1/events", json=event, headers=bearer(keys["publisher"]))
            assert sent.json() == {"accepted": 1, "rejected": []}
        async with running_worker(settings), reader(settings, topics.outbound) as outbound:
            await wait_all_consumed(settings)
            messages = await outbound.until(lambda values: len(values) >= 1)
    assert len([m for m in messages if m["customer_id"] == customer]) == 1


async def test_segment_sdk_identify_and_track_reach_events_and_start_journeys(
    infrastructure: Settings, tmp_path: Path
) -> None:
    settings = isolated_settings(infrastructure)
    topics = await prepare(settings)
    keys = await role_keys(settings)
    names = tmp_path / "names.json"
    names.write_bytes(jsonwire.dumps({"Order Completed": "api.ordered"}))
    async with api_client(settings) as client:
        deployed = await client.post(
            "/v1/journeys", json=journey_file(), headers=bearer(keys["operator"])
        )
        assert deployed.status_code == 200, deployed.text
    async with api_server(
        settings, tmp_path / "api.log", ORCHESTRATOR_API_EVENT_NAMES=str(names)
    ) as url:

        def send(compressed: bool, user: str) -> None:
            client = Client(keys["publisher"], host=url, sync_mode=True, gzip=compressed)
            client.identify(user, {"email": f"{user}@example.com"})
            client.track(user, "Order Completed", {"total": 12.5})
            client.track(anonymous_id="anon-1", event="Page Viewed")

        await asyncio.to_thread(send, False, "sdk-plain")
        await asyncio.to_thread(send, True, "sdk-gzip")
    async with reader(settings, topics.events) as log:
        seen = await log.until(lambda values: len(values) >= 6)
    by_customer = {(v["customer_id"], v["name"]) for v in seen}
    for user in ("sdk-plain", "sdk-gzip"):
        assert (user, "profile.updated") in by_customer
        assert (user, "api.ordered") in by_customer
    assert ("anonymous:anon-1", "Page Viewed") in by_customer
    ordered = next(v for v in seen if v["name"] == "api.ordered")
    assert ordered["properties"]["total"] == 12.5
    assert ordered["properties"]["$library"]["name"] == "analytics-python"
    async with running_worker(settings), reader(settings, topics.outbound) as outbound:
        messages = await outbound.until(
            lambda values: {m["customer_id"] for m in values} >= {"sdk-plain", "sdk-gzip"}
        )
    assert len(messages) == 2


async def test_ingest_over_the_in_flight_limit_is_shed_with_429(infrastructure: Settings) -> None:
    """With room for one ingest request, a second one meanwhile gets 429 and Retry-After."""
    settings = isolated_settings(infrastructure, api_max_inflight_ingest=1)
    await prepare(settings)
    keys = await role_keys(settings)
    publisher = bearer(keys["publisher"])
    track = {"type": "track", "userId": "c-shed", "event": "Shed Ping", "messageId": "shed-1"}
    reading, release = asyncio.Event(), asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        # The route reads the body while it holds the slot: the first chunk's read is the
        # sign the slot is taken, and the rest waits for the test.
        body = jsonwire.dumps(track)
        reading.set()
        yield body[:10]
        await release.wait()
        yield body[10:]

    async with api_client(settings) as client:
        held = asyncio.create_task(
            client.post(
                "/v1/track",
                content=slow_body(),
                headers=publisher | {"content-type": "application/json"},
            )
        )
        await asyncio.wait_for(reading.wait(), 30)
        shed = [
            await client.post(path, json=body, headers=publisher)
            for path, body in (("/v1/track", track), ("/v1/events", _event(1, "c-shed")))
        ]
        release.set()
        first = await held
        after = await client.post("/v1/track", json=track, headers=publisher)

    assert [r.status_code for r in shed] == [429, 429], [r.text for r in shed]
    assert all(r.json()["code"] == "overloaded" for r in shed)
    assert all(r.headers["retry-after"] == "1" for r in shed)
    assert (first.status_code, first.json()) == (200, {"success": True})
    assert after.status_code == 200, after.text
