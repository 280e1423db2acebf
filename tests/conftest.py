"""Session-wide test setup: the real Kafka and Redis from deploy/local must be up."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator

import pytest

from orchestrator.dev.localinfra import ensure_local_infrastructure, ensure_local_redis_cluster
from orchestrator.dev.namespaces import drop_namespaces
from orchestrator.infra.settings import Settings
from tests.runtime_harness import SESSION_REDIS_PATTERN, SESSION_TOPIC_PREFIX

# pytest-timeout fails a test after 180 s (pyproject.toml); report what it awaits before that.
_HANG_REPORT_AFTER = 150.0


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[Settings]:
    """Start local Kafka and Redis if they are not running (idempotent), once per session.

    At the end, the session's topics and keys are dropped: a broker holding thousands of
    leftover partitions takes minutes to start.
    """
    settings = Settings()
    ensure_local_infrastructure(settings, sys.stderr)
    yield settings
    asyncio.run(_drop_session(settings))


@pytest.fixture(scope="session")
def redis_cluster_url(infrastructure: Settings) -> Iterator[str]:
    """A local three-master Redis Cluster (deploy/local/redis-cluster.sh), once per session."""
    url = ensure_local_redis_cluster(17001, sys.stderr)
    yield url
    cluster = infrastructure.model_copy(update={"redis_url": url, "redis_cluster": True})
    asyncio.run(_drop_session(cluster))


async def _drop_session(settings: Settings) -> None:
    """Drop this session's topics and its keys on the settings' Redis."""
    await drop_namespaces(
        settings, lambda name: name.startswith(SESSION_TOPIC_PREFIX), SESSION_REDIS_PATTERN
    )


@pytest.fixture(autouse=True)
async def _report_hangs() -> AsyncIterator[None]:
    """Print every asyncio task's stack if a test is still running after 150 s.

    pytest-timeout's own dump shows threads, and a hung test's main thread just sits in the
    event loop's select(); what matters is which task awaits what, and this prints that.
    """
    handle = asyncio.get_running_loop().call_later(_HANG_REPORT_AFTER, _print_tasks)
    yield
    handle.cancel()


def _print_tasks() -> None:
    print(f"still running after {_HANG_REPORT_AFTER:.0f}s; asyncio tasks:", file=sys.stderr)
    for task in asyncio.all_tasks():
        task.print_stack(limit=20, file=sys.stderr)
