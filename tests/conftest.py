"""Session-wide test setup: the real Kafka and Redis from deploy/local must be up."""

from __future__ import annotations

import sys

import pytest

from orchestrator.runtime.localinfra import ensure_local_infrastructure
from orchestrator.runtime.settings import Settings


@pytest.fixture(scope="session")
def infrastructure() -> Settings:
    """Start local Kafka and Redis if they are not running (idempotent), once per session."""
    settings = Settings()
    ensure_local_infrastructure(settings, sys.stderr)
    return settings
