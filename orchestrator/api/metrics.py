"""The API's Prometheus metrics and the middleware that counts every request.

One registry per app (not prometheus-client's global one) so several apps in one test
process do not collide. Labels are the route template, never a customer id.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.measure.prometheus import JourneyMetrics

__all__ = ["ApiMetrics", "MetricsMiddleware"]


class ApiMetrics:
    """Requests by route and status, latency by route, events ingested and rejected; and
    every journey figure (`journeys`: refreshed from the audit store by the scrape)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "orchestrator_api_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "orchestrator_api_request_seconds",
            "time to answer a request",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.ingested = Counter(
            "orchestrator_api_events_ingested",
            "events acknowledged by Kafka",
            ["route"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "orchestrator_api_events_rejected",
            "events refused as invalid or too large",
            ["route"],
            registry=self.registry,
        )
        self.journeys = JourneyMetrics()
        self.registry.register(self.journeys)


class MetricsMiddleware:
    """Counts and times every HTTP request under the route template that answered it."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            # Unmatched paths share one label: a scanner must not grow the label set.
            template = getattr(route, "path", "unmatched")
            method = scope["method"]
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - started)
