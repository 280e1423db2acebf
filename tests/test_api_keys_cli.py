"""`orchestrator keys`: the secret alone on the last line, hashed at rest, changes recorded."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from orchestrator.control.keys import KeyStore
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.settings import Settings
from tests.runtime_harness import isolated_settings, prepare, reader, redis_client


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        env={**os.environ, **settings.as_environment()},
        capture_output=True,
        text=True,
        check=True,
    )


async def test_keys_create_list_revoke(infrastructure: Settings) -> None:
    settings = isolated_settings(infrastructure)
    topics = await prepare(settings)
    created = await asyncio.to_thread(
        _cli, settings, "keys", "create", "--role", "auditor", "--name", "compliance"
    )
    secret = created.stdout.strip().splitlines()[-1]
    async with redis_client(settings) as redis:
        store = KeyStore(redis, RedisKeys(settings.redis_prefix))
        key = await store.authenticate(secret)
        assert key is not None and key.role == "auditor" and key.name == "compliance"
        stored = await redis.hget(RedisKeys(settings.redis_prefix).api_keys(), key.key_id)
        assert stored is not None and secret not in str(stored)
    listed = await asyncio.to_thread(_cli, settings, "keys", "list")
    assert key.key_id in listed.stdout and secret not in listed.stdout
    await asyncio.to_thread(_cli, settings, "keys", "revoke", key.key_id)
    async with redis_client(settings) as redis:
        assert await KeyStore(redis, RedisKeys(settings.redis_prefix)).authenticate(secret) is None
    async with reader(settings, topics.interactions) as log:
        records = await log.until(lambda values: len(values) >= 2)
    assert [(r["type"], r["action"], r["key_id"]) for r in records] == [
        ("operator", "key.create", key.key_id),
        ("operator", "key.revoke", key.key_id),
    ]
