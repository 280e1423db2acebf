"""Dropping a whole namespace (topic prefix + Redis key prefix) once nobody needs it.

Tests, benchmarks and demo runs each work in their own namespace. Kafka keeps every
partition of every topic on disk and reopens them all at start-up, so namespaces left
behind make the broker slower to start with each run; these functions clear them out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from orchestrator.infra.redisclient import RedisClient, connect_redis
from orchestrator.infra.settings import Settings
from orchestrator.infra.topics import kafka_admin

__all__ = ["delete_keys", "delete_topics", "drop_namespaces"]

log = logging.getLogger(__name__)

_DELETE_BATCH = 200


async def drop_namespaces(
    settings: Settings, topics: Callable[[str], bool], keys: str
) -> tuple[list[str], int]:
    """Delete the topics `topics` accepts and the keys matching the glob `keys`.

    Returns (topics deleted, keys deleted).
    """
    dropped = await delete_topics(settings.kafka_bootstrap, topics)
    redis = connect_redis(settings)
    try:
        removed = await delete_keys(redis, keys)
    finally:
        await redis.aclose()
    return dropped, removed


async def delete_topics(bootstrap: str, select: Callable[[str], bool]) -> list[str]:
    """Delete every topic whose name `select` accepts; returns the names deleted."""
    async with kafka_admin(bootstrap) as admin:
        doomed = sorted(name for name in await admin.list_topics() if select(name))
        for start in range(0, len(doomed), _DELETE_BATCH):
            await admin.delete_topics(doomed[start : start + _DELETE_BATCH], timeout_ms=60_000)
    if doomed:
        log.info("deleted %d topics", len(doomed))
    return doomed


async def delete_keys(client: RedisClient, pattern: str) -> int:
    """Delete every key matching the glob `pattern` (SCAN, never KEYS); returns how many."""
    deleted = 0
    batch: list[bytes] = []
    async for key in client.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= _DELETE_BATCH:
            deleted += await _unlink(client, batch)
            batch = []
    if batch:
        deleted += await _unlink(client, batch)
    return deleted


async def _unlink(client: RedisClient, keys: list[bytes]) -> int:
    # The cluster client splits a multi-key UNLINK by slot itself.
    return int(await client.unlink(*keys))
