"""The API keeps answering while Kafka or Redis is down, and recovers without a restart.

A private broker and Redis server (free ports, own state) are stopped and started; the
shared ones are never touched.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from orchestrator.infra.settings import Settings
from tests.api_harness import api_client, bearer, role_keys
from tests.outage_infra import PrivateServer, in_thread, private_kafka, private_redis
from tests.runtime_harness import isolated_settings, prepare, wait_until

# Bounds of an answer while a dependency is down: the publish timeout plus slack.
PUBLISH_TIMEOUT = 2.0
ANSWER_WITHIN = 10.0


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[PrivateServer, str, PrivateServer, str]]:
    kafka, bootstrap = private_kafka()
    redis, url = private_redis(tmp_path)
    kafka.start()
    redis.start()
    try:
        yield kafka, bootstrap, redis, url
    finally:
        kafka.remove()
        redis.remove()


def _event(n: int) -> dict[str, str]:
    return {
        "event_id": f"outage-{n}",
        "customer_id": "c-outage",
        "name": "outage.ping",
        "occurred_at": "2026-05-01T09:30:00Z",
    }


async def _timed(client: httpx.AsyncClient, method: str, path: str, **kw: object) -> httpx.Response:
    started = time.monotonic()
    response = await client.request(method, path, **kw)  # type: ignore[arg-type]
    assert time.monotonic() - started < ANSWER_WITHIN, f"{method} {path} took too long"
    return response


async def test_api_answers_503_while_kafka_or_redis_is_down_and_recovers(
    infrastructure: Settings, servers: tuple[PrivateServer, str, PrivateServer, str]
) -> None:
    kafka, bootstrap, redis, url = servers
    settings = isolated_settings(
        infrastructure,
        kafka_bootstrap=bootstrap,
        redis_url=url,
        api_publish_timeout_s=PUBLISH_TIMEOUT,
    )
    await prepare(settings)
    keys = await role_keys(settings)
    auth = bearer(keys["publisher"])
    async with api_client(settings) as client:
        assert (await client.post("/v1/events", json=_event(0), headers=auth)).status_code == 202

        await in_thread(kafka.stop)
        ready = await _timed(client, "GET", "/readyz")
        assert ready.status_code == 503 and ready.json()["code"] == "kafka_unavailable"
        ingest = await _timed(client, "POST", "/v1/events", json=_event(1), headers=auth)
        assert ingest.status_code == 503, ingest.text
        assert ingest.json()["code"] == "dependency_unavailable"
        assert "Kafka" in ingest.json()["message"]
        assert (await client.get("/healthz")).status_code == 200

        await in_thread(kafka.start)

        async def accepted(n: int) -> bool:
            response = await client.post("/v1/events", json=_event(n), headers=auth)
            return response.status_code == 202

        await wait_until(lambda: accepted(2), "ingest recovers after Kafka returns", timeout=60)
        assert (await client.get("/readyz")).status_code == 200

        await in_thread(redis.stop)
        ready = await _timed(client, "GET", "/readyz")
        assert ready.status_code == 503 and ready.json()["code"] == "redis_unavailable"
        ingest = await _timed(client, "POST", "/v1/events", json=_event(3), headers=auth)
        assert ingest.status_code == 503 and "Redis" in ingest.json()["message"]

        await in_thread(redis.start)
        await wait_until(lambda: accepted(4), "ingest recovers after Redis returns", timeout=60)
        assert (await client.get("/readyz")).status_code == 200
