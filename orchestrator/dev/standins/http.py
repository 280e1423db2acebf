"""Serving a stand-in's aiohttp application on a free local port."""

from __future__ import annotations

from aiohttp import web

__all__ = ["serve_locally"]


async def serve_locally(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve `app` on a free port of 127.0.0.1; its runner (to clean up) and base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"
