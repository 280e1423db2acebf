"""The feedback router's `/health` and `/metrics` (Prometheus), on `ORCHESTRATOR_FEEDBACK_
METRICS_PORT` (0: off), beside the Redis counters the per-team view reads."""

from __future__ import annotations

import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

from orchestrator.errors import ConfigurationError

__all__ = ["RouterMetrics"]

log = logging.getLogger(__name__)


class RouterMetrics:
    """Counters of routed items per team and topic, and the server that shows them.

    Counted after each transaction commits, so a batch retried after a crash is counted by
    the process that committed it (Prometheus counters restart at zero with the process).
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.healthy = False
        self.registry = CollectorRegistry(auto_describe=False)
        self.routed = Counter(
            "orchestrator_feedback_routed",
            "feedback items produced to a team's topic",
            ["team", "topic", "source", "rerouted"],
            registry=self.registry,
        )
        self.skipped = Counter(
            "orchestrator_feedback_events_skipped",
            "events read that carry no feedback (or are not valid events)",
            registry=self.registry,
        )
        self.notifications = Counter(
            "orchestrator_feedback_notifications",
            "webhook and email messages put on the outbound topic for teams",
            ["team", "channel"],
            registry=self.registry,
        )
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen (unless the port is 0); raises `ConfigurationError` if it cannot bind."""
        if self.port == 0:
            return
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.host, self.port).start()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot serve /metrics on {self.host}:{self.port}: {exc.strerror}; set "
                "ORCHESTRATOR_FEEDBACK_METRICS_PORT to a free port or 0 for none"
            ) from exc
        log.info("serving /health and /metrics on http://%s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening; safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _health(self, request: web.Request) -> web.Response:
        state = "healthy" if self.healthy else "starting"
        return web.json_response({"state": state}, status=200 if self.healthy else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
