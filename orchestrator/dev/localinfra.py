"""Starting the local Kafka, Redis and PostgreSQL (deploy/local/up.sh) when one is not answering."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

from orchestrator.errors import ConfigurationError
from orchestrator.infra.settings import Settings

__all__ = ["ensure_local_infrastructure", "ensure_local_redis_cluster"]

_UP_SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "local" / "up.sh"


def _answers(hostport: str) -> bool:
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def ensure_local_infrastructure(settings: Settings, out: TextIO) -> None:
    """Start local Kafka, Redis and PostgreSQL with deploy/local/up.sh unless all answer.

    Raises `ConfigurationError` when one does not answer and this is not a source checkout.
    """
    redis_hostport = settings.redis_url.split("//", 1)[1].split("/", 1)[0]
    database = urlsplit(settings.database_url)
    database_hostport = f"{database.hostname or '127.0.0.1'}:{database.port or 5432}"
    if all(
        _answers(hostport)
        for hostport in (settings.kafka_bootstrap.split(",")[0], redis_hostport, database_hostport)
    ):
        return
    if not _UP_SCRIPT.exists():
        raise ConfigurationError(
            f"Kafka ({settings.kafka_bootstrap}), Redis ({settings.redis_url}) or PostgreSQL "
            f"({database_hostport}) is not reachable: start them, or set "
            "ORCHESTRATOR_KAFKA_BOOTSTRAP / ORCHESTRATOR_REDIS_URL / ORCHESTRATOR_DATABASE_URL"
        )
    out.write("starting local Kafka, Redis and PostgreSQL (deploy/local/up.sh)...\n")
    out.flush()
    result = subprocess.run(  # noqa: S603 - our own script at a fixed path
        [str(_UP_SCRIPT)],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if result.returncode != 0:
        raise ConfigurationError(f"deploy/local/up.sh failed:\n{result.stderr}")


def ensure_local_redis_cluster(base_port: int, out: TextIO) -> str:
    """Start the local three-node Redis Cluster (deploy/local/redis-cluster.sh) if needed.

    Returns the URL of its first node.
    """
    script = _UP_SCRIPT.with_name("redis-cluster.sh")
    if not script.exists():
        raise ConfigurationError("deploy/local/redis-cluster.sh is missing: run from a checkout")
    result = subprocess.run(  # noqa: S603 - our own script at a fixed path
        [str(script), "start"],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "REDIS_CLUSTER_BASE_PORT": str(base_port)},
    )
    if result.returncode != 0:
        raise ConfigurationError(f"deploy/local/redis-cluster.sh failed:\n{result.stderr}")
    return f"redis://127.0.0.1:{base_port}/0"
