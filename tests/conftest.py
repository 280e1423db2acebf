"""Session-wide test setup: the real Kafka and Redis from deploy/local must be up."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator

import pytest

from orchestrator.runtime.localinfra import ensure_local_infrastructure, ensure_local_redis_cluster
from orchestrator.runtime.namespaces import delete_keys, delete_topics
from orchestrator.runtime.redisclient import connect_redis
from orchestrator.runtime.settings import Settings
from tests.runtime_harness import SESSION_REDIS_PATTERN, SESSION_TOPIC_PREFIX


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[Settings]:
    """Start local Kafka and Redis if they are not running (idempotent), once per session.

    At the end, the session's topics and keys are dropped: a broker holding thousands of
    leftover partitions takes minutes to start.
    """
    settings = Settings()
    ensure_local_infrastructure(settings, sys.stderr)
    yield settings
    asyncio.run(_drop_session_namespaces(settings))


@pytest.fixture(scope="session")
def redis_cluster_url(infrastructure: Settings) -> Iterator[str]:
    """A local three-master Redis Cluster (deploy/local/redis-cluster.sh), once per session."""
    url = ensure_local_redis_cluster(17001, sys.stderr)
    yield url
    cluster = infrastructure.model_copy(update={"redis_url": url, "redis_cluster": True})
    asyncio.run(_drop_session_keys(cluster))


async def _drop_session_namespaces(settings: Settings) -> None:
    await delete_topics(
        settings.kafka_bootstrap, lambda name: name.startswith(SESSION_TOPIC_PREFIX)
    )
    await _drop_session_keys(settings)


async def _drop_session_keys(settings: Settings) -> None:
    client = connect_redis(settings)
    try:
        await delete_keys(client, SESSION_REDIS_PATTERN)
    finally:
        await client.aclose()
