"""A private Kafka broker and Redis server that outage tests may stop and start at will.

The shared ones (19092, 16379) serve every engineer's tests and are never touched: these run
on free ports, with their own state, through the same deploy/local scripts.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import aiohttp

from tests.runtime_harness import wait_until

LOCAL = Path(__file__).resolve().parent.parent / "deploy" / "local"


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PrivateServer:
    """A server run by one of the deploy/local scripts on its own ports and state dir."""

    def __init__(self, script: str, env: dict[str, str], instance: Path) -> None:
        self.script = LOCAL / script
        self.env = {**os.environ, **env}
        self.instance = instance
        self.running = False

    def start(self) -> None:
        """Start it and wait until it answers (the script waits)."""
        subprocess.run([self.script, "start"], env=self.env, check=True, capture_output=True)
        self.running = True

    def stop(self) -> None:
        """Stop it gracefully (state kept), waiting until it is gone."""
        subprocess.run([self.script, "stop"], env=self.env, check=True, capture_output=True)
        self.running = False

    def remove(self) -> None:
        """Stop it and delete its state."""
        if self.running:
            self.stop()
        shutil.rmtree(self.instance, ignore_errors=True)


def private_kafka() -> tuple[PrivateServer, str]:
    """A brand-new broker on free ports (not started) and its bootstrap address."""
    port, controller = free_port(), free_port()
    local_dir = Path(
        os.environ.get("ORCHESTRATOR_LOCAL_DIR", Path.home() / ".cache/orchestrator-local")
    )
    instance = local_dir / f"kafka-{port}"
    shutil.rmtree(instance, ignore_errors=True)
    env = {"KAFKA_PORT": str(port), "KAFKA_CONTROLLER_PORT": str(controller)}
    return PrivateServer("kafka.sh", env, instance), f"127.0.0.1:{port}"


def private_redis(state_dir: Path) -> tuple[PrivateServer, str]:
    """A Redis server (AOF on, as deployed) on a free port under `state_dir` and its URL."""
    port = free_port()
    env = {"REDIS_PORT": str(port), "ORCHESTRATOR_LOCAL_DIR": str(state_dir)}
    return (
        PrivateServer("redis.sh", env, state_dir / f"redis-{port}"),
        f"redis://127.0.0.1:{port}/0",
    )


async def health(port: int) -> tuple[int, dict[str, Any]]:
    """GET /health of a worker: (status, body); (0, {}) while nothing answers."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
            session.get(f"http://127.0.0.1:{port}/health") as response,
        ):
            return response.status, await response.json()
    except (aiohttp.ClientError, TimeoutError):
        return 0, {}


async def wait_for_state(port: int, state: str, timeout: float = 60.0) -> None:
    """Wait until the worker's /health reports `state`."""

    async def reached() -> bool:
        return (await health(port))[1].get("state") == state

    await wait_until(reached, f"/health says {state}", timeout=timeout, interval=0.2)


async def in_thread(step: Any) -> None:
    """Run a blocking start/stop without blocking the event loop (publishers keep going)."""
    await asyncio.to_thread(step)


def private_postgres() -> tuple[PrivateServer, str]:
    """A PostgreSQL server (deploy/local/postgres.sh) on a free port with its own data
    directory (under /var/lib/postgresql: the postgres user must be able to enter it) and the
    URL of its `orchestrator` database."""
    port = free_port()
    instance = Path(f"/var/lib/postgresql/orchestrator-test-{port}")
    shutil.rmtree(instance, ignore_errors=True)
    env = {"POSTGRES_PORT": str(port), "POSTGRES_DIR": str(instance)}
    return (
        PrivateServer("postgres.sh", env, instance),
        f"postgresql://postgres@127.0.0.1:{port}/orchestrator",
    )
