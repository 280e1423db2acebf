"""Session-wide test setup: the real Kafka and Redis from deploy/local must be up."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from orchestrator.runtime.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _answers(hostport: str) -> bool:
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def infrastructure() -> Settings:
    """Start local Kafka and Redis if they are not running (idempotent), once per session."""
    settings = Settings()
    redis_hostport = settings.redis_url.split("//", 1)[1].split("/", 1)[0]
    if not (_answers(settings.kafka_bootstrap) and _answers(redis_hostport)):
        result = subprocess.run(
            [str(ROOT / "deploy/local/up.sh")], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            pytest.fail(f"deploy/local/up.sh failed:\n{result.stdout}\n{result.stderr}")
    return settings
