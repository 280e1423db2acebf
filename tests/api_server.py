"""`orchestrator api` as a real uvicorn subprocess, for clients that need a socket (the SDK)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from orchestrator.infra.settings import Settings
from tests.outage_infra import free_port
from tests.runtime_harness import wait_until

__all__ = ["api_server"]


@contextlib.asynccontextmanager
async def api_server(settings: Settings, log_path: Path, **env: str) -> AsyncIterator[str]:
    """Run `orchestrator api` on a free port until the block ends; yield its base URL."""
    port = free_port()
    environment = {
        **os.environ,
        **settings.as_environment(),
        "ORCHESTRATOR_API_PORT": str(port),
        **env,
    }
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "orchestrator",
            "api",
            "--log-level",
            "warning",
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:

            async def answering() -> bool:
                if process.returncode is not None:
                    raise AssertionError(f"api exited with {process.returncode}: see {log_path}")
                try:
                    async with httpx.AsyncClient(timeout=2) as client:
                        return (await client.get(f"{url}/healthz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await wait_until(answering, "the API answers /healthz", timeout=60, interval=0.1)
            yield url
        finally:
            process.terminate()
            await asyncio.wait_for(process.wait(), timeout=30)
