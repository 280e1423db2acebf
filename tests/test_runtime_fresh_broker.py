"""Topic setup on a broker that has never seen a consumer group (a fresh machine's first run).

There `__consumer_offsets` does not exist yet: the first group lookup creates it and is
refused until its partitions have leaders. A second broker on free ports, with its own state
dir, stands in for the fresh machine; it is stopped and its state removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.infra.names import TopicNames
from orchestrator.infra.settings import Settings
from orchestrator.infra.topics import ensure_topics
from tests.runtime_harness import committed_offsets, isolated_settings

KAFKA_SCRIPT = Path(__file__).resolve().parent.parent / "deploy" / "local" / "kafka.sh"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def fresh_broker() -> Iterator[str]:
    port, controller_port = _free_port(), _free_port()
    env = {**os.environ, "KAFKA_PORT": str(port), "KAFKA_CONTROLLER_PORT": str(controller_port)}
    local_dir = Path(
        os.environ.get("ORCHESTRATOR_LOCAL_DIR", Path.home() / ".cache/orchestrator-local")
    )
    instance = local_dir / f"kafka-{port}"
    shutil.rmtree(instance, ignore_errors=True)
    subprocess.run([KAFKA_SCRIPT, "start"], env=env, check=True)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([KAFKA_SCRIPT, "stop"], env=env, check=True)
        shutil.rmtree(instance, ignore_errors=True)


async def test_topic_setup_on_a_fresh_broker_commits_start_offsets(
    infrastructure: Settings, fresh_broker: str
) -> None:
    settings = isolated_settings(infrastructure, kafka_bootstrap=fresh_broker)
    await ensure_topics(settings)
    events = TopicNames(settings.topic_prefix).events
    assert await committed_offsets(settings) == {(events, p): 0 for p in range(settings.partitions)}
