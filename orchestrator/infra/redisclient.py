"""One way to connect to Redis, single node or Redis Cluster, chosen by settings."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from orchestrator.infra.settings import Settings

__all__ = ["RedisClient", "connect_redis"]

RedisClient = Redis | RedisCluster


def connect_redis(settings: Settings) -> RedisClient:
    """A client for `ORCHESTRATOR_REDIS_URL`; a cluster client when `ORCHESTRATOR_REDIS_CLUSTER`.

    Every key the runtime touches in one command or script is hash-tagged to one slot, so
    the same code runs on both.
    """
    if settings.redis_cluster:
        return RedisCluster.from_url(settings.redis_url)
    return Redis.from_url(settings.redis_url)
