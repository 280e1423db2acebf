"""`/health` and `/metrics` over HTTP for any long-running process (journey workers,
connector workers), for supervisors, probes and Prometheus.

`GET /health` answers the process's `Health` snapshot (`{"state": ..., "since": ..., ...}`)
with 200 when it is `healthy` and 503 otherwise (starting, waiting for Kafka or Redis,
stopping). `GET /metrics` answers the Prometheus text format of the process's own registry,
after `refresh()` (when given) has updated what must be read from elsewhere (Redis).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from orchestrator.errors import ConfigurationError
from orchestrator.infra.outage import Health

__all__ = ["HealthServer"]

log = logging.getLogger(__name__)


class HealthServer:
    """A small aiohttp server answering `/health` and `/metrics` for one process.

    `port_setting` names the setting to change when the port is taken (in the error).
    """

    def __init__(
        self,
        health: Health,
        registry: CollectorRegistry,
        host: str,
        port: int,
        *,
        port_setting: str = "ORCHESTRATOR_METRICS_PORT",
        refresh: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.health = health
        self.registry = registry
        self.host = host
        self.port = port
        self.port_setting = port_setting
        self.refresh = refresh
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        self._set_up = False

    async def start(self) -> None:
        """Listen; raises `ConfigurationError` if the port cannot be bound."""
        await self._runner.setup()
        self._set_up = True
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot serve /health on {self.host}:{self.port}: {exc.strerror}; set "
                f"{self.port_setting} to a free port (one per process on a host) or 0 for none"
            ) from exc
        log.info("serving /health and /metrics on http://%s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening; safe to call twice."""
        if self._set_up:
            self._set_up = False
            await self._runner.cleanup()

    async def _health(self, request: web.Request) -> web.Response:
        snapshot = self.health.snapshot()
        return web.json_response(snapshot, status=200 if snapshot["state"] == "healthy" else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        if self.refresh is not None:
            try:
                await self.refresh()
            except Exception as exc:  # noqa: BLE001 - a scrape still answers what it has
                log.warning("metrics refresh failed, answering the last figures: %s", exc)
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
