"""Session-wide test setup: the real Kafka and Redis from deploy/local must be up."""

from __future__ import annotations

import sys

import pytest

from orchestrator.runtime.localinfra import ensure_local_infrastructure, ensure_local_redis_cluster
from orchestrator.runtime.settings import Settings


@pytest.fixture(scope="session")
def infrastructure() -> Settings:
    """Start local Kafka and Redis if they are not running (idempotent), once per session."""
    settings = Settings()
    ensure_local_infrastructure(settings, sys.stderr)
    return settings


@pytest.fixture(scope="session")
def redis_cluster_url(infrastructure: Settings) -> str:
    """A local three-master Redis Cluster (deploy/local/redis-cluster.sh), once per session."""
    return ensure_local_redis_cluster(17001, sys.stderr)
