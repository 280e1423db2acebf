"""A local webhook receiver: records each POST, answers a chosen status."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from orchestrator.dev.standins.local import serve_locally

__all__ = ["WebhookReceiver"]


@dataclass
class WebhookReceiver:
    """Records each POST's headers and raw body; answers `status`."""

    status: int = 200
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    url: str = ""

    async def start(self) -> str:
        """Serve on a free port of 127.0.0.1; returns the hook URL."""
        app = web.Application()
        app.router.add_post("/hook", self._receive)
        self._runner, base_url = await serve_locally(app)
        self.url = f"{base_url}/hook"
        return self.url

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        return web.Response(status=self.status)
