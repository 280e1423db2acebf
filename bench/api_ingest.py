"""HTTP ingest benchmark: one `orchestrator api` process on the local Kafka and Redis.

    .venv/bin/python bench/api_ingest.py [--seconds 10] [--batch 100] [--senders 16]

Measures (1) the most events per second one API process accepts (202, acknowledged by
Kafka) in batches of `--batch`, with `--senders` concurrent clients, and (2) the latency of a
batch at half that load, offered at a fixed rate (p50/p95/p99). The API runs as its own
process, as deployed; this process is the load generator, on the same 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from orchestrator import jsonwire
from orchestrator.control.keys import KeyStore
from orchestrator.control.keyservice import KeyService
from orchestrator.dev.namespaces import drop_namespaces
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.redisclient import connect_redis
from orchestrator.infra.settings import Settings
from orchestrator.infra.topics import ensure_topics

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.outage_infra import free_port  # noqa: E402

RUN = uuid.uuid4().hex[:8]


def _settings() -> Settings:
    return Settings().model_copy(
        update={
            "topic_prefix": f"bench.{RUN}.api.",
            "redis_prefix": f"bench:{RUN}:api:",
            "group_id": f"bench-{RUN}-api",
            "api_port": free_port(),
        }
    )


async def _publisher_key(settings: Settings) -> str:
    redis = connect_redis(settings)
    try:
        service = KeyService(settings, KeyStore(redis, RedisKeys(settings.redis_prefix)), "bench")
        _, secret = await service.create("publisher", "bench")
        return secret
    finally:
        await redis.aclose()


@contextlib.asynccontextmanager
async def _api(settings: Settings) -> AsyncIterator[str]:
    env = {**os.environ, **settings.as_environment(), "ORCHESTRATOR_METRICS_PORT": "0"}
    process = subprocess.Popen(  # noqa: ASYNC220 - started once; its output goes to /dev/null
        [sys.executable, "-m", "orchestrator", "api", "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{settings.api_port}"
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            for _ in range(300):
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{url}/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)  # polling a server that is starting up
            else:
                raise RuntimeError("the API did not become ready in 30 s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _batch(size: int, counter: list[int]) -> bytes:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    events = []
    for _ in range(size):
        counter[0] += 1
        n = counter[0]
        events.append(
            {
                "event_id": f"b{RUN}-{n}",
                "customer_id": f"c{n % 5000}",
                "name": "page.viewed",
                "occurred_at": now,
                "properties": {"path": "/pricing", "n": n},
            }
        )
    return jsonwire.dumps({"events": events})


async def _post(client: httpx.AsyncClient, url: str, body: bytes) -> float:
    started = time.perf_counter()
    response = await client.post(url, content=body, headers={"content-type": "application/json"})
    if response.status_code != 202:
        raise RuntimeError(f"ingest answered {response.status_code}: {response.text[:200]}")
    return time.perf_counter() - started


async def max_rate(url: str, key: str, seconds: float, batch: int, senders: int) -> float:
    """Events per second accepted with `senders` clients posting back to back."""
    counter = [0]
    accepted = 0
    deadline = time.perf_counter() + seconds
    headers = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:

        async def sender() -> None:
            nonlocal accepted
            while time.perf_counter() < deadline:
                await _post(client, "/v1/events", _batch(batch, counter))
                accepted += batch

        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(senders)))
        return accepted / (time.perf_counter() - started)


async def latency_at(url: str, key: str, rate: float, seconds: float, batch: int) -> list[float]:
    """Latencies of batches offered at `rate` events/s (open loop: a slow answer does not
    slow the offered load)."""
    counter = [0]
    interval = batch / rate
    headers = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        tasks: list[asyncio.Task[float]] = []
        start = time.perf_counter()
        n = 0
        while time.perf_counter() - start < seconds:
            tasks.append(asyncio.create_task(_post(client, "/v1/events", _batch(batch, counter))))
            n += 1
            delay = start + n * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # the offered load's own schedule
        return sorted(await asyncio.gather(*tasks))


async def run(seconds: float, batch: int, senders: int) -> dict[str, float]:
    """Both measurements; returns the figures."""
    settings = _settings()
    await ensure_topics(settings)
    key = await _publisher_key(settings)
    try:
        async with _api(settings) as url:
            await max_rate(
                url, key, 2, batch, senders
            )  # warm up the producer and the JIT-less path
            rate = await max_rate(url, key, seconds, batch, senders)
            latencies = await latency_at(url, key, rate / 2, seconds, batch)
    finally:
        await drop_namespaces(
            Settings(), lambda name: name.startswith(f"bench.{RUN}."), f"bench:{RUN}:*"
        )
    return {
        "api_ingest_events_per_s": round(rate),
        "api_batch": batch,
        "api_half_load_events_per_s": round(rate / 2),
        "api_latency_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "api_latency_p95_ms": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 1),
        "api_latency_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
    }


def main() -> None:
    """Print the figures as lines and, last, as one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--senders", type=int, default=16)
    args = parser.parse_args()
    figures = asyncio.run(run(args.seconds, args.batch, args.senders))
    print(
        f"api ingest: {figures['api_ingest_events_per_s']:,} events/s in batches of "
        f"{args.batch}; at half load ({figures['api_half_load_events_per_s']:,} events/s) "
        f"p50 {figures['api_latency_p50_ms']} ms, p95 {figures['api_latency_p95_ms']} ms, "
        f"p99 {figures['api_latency_p99_ms']} ms per batch"
    )
    print(jsonwire.dumps(figures).decode())


if __name__ == "__main__":
    main()
