"""Helpers for API tests: an in-process app on isolated names, and a key per role."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx

from orchestrator.api.app import create_app
from orchestrator.control.keys import ROLES, KeyStore
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.settings import Settings
from tests.runtime_harness import redis_client

__all__ = ["api_client", "bearer", "role_keys"]


@contextlib.asynccontextmanager
async def api_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to an in-process app, its lifespan started and stopped."""
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://api", timeout=60) as client,
    ):
        yield client


async def role_keys(settings: Settings) -> dict[str, str]:
    """A live secret per role, plus `revoked` (a revoked admin key) and `wrong` (made up)."""
    async with redis_client(settings) as redis:
        store = KeyStore(redis, RedisKeys(settings.redis_prefix))
        secrets: dict[str, str] = {
            role: (await store.create(role, f"test {role}", "2026-01-01T00:00:00Z"))[1]
            for role in ROLES
        }
        revoked, secret = await store.create("admin", "revoked", "2026-01-01T00:00:00Z")
        await store.revoke(revoked.key_id, "2026-01-02T00:00:00Z")
    secrets["revoked"] = secret
    secrets["wrong"] = secrets["admin"][:-4] + "xxxx"
    return secrets


def bearer(secret: str) -> dict[str, str]:
    """The Authorization header for a key."""
    return {"Authorization": f"Bearer {secret}"}
