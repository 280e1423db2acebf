"""One way to connect to Redis, single node or Redis Cluster, chosen by settings."""

from __future__ import annotations

import hiredis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.exceptions import DataError
from redis.typing import EncodableT

from orchestrator.infra.settings import Settings

__all__ = ["RedisClient", "connect_redis"]

RedisClient = Redis | RedisCluster


def connect_redis(settings: Settings) -> RedisClient:
    """A client for `ORCHESTRATOR_REDIS_URL`; a cluster client when `ORCHESTRATOR_REDIS_CLUSTER`.

    Every key the runtime touches in one command or script is hash-tagged to one slot, so
    the same code runs on both. A single node's connections pack commands with hiredis.
    """
    if settings.redis_cluster:
        return RedisCluster.from_url(settings.redis_url)
    client = Redis.from_url(settings.redis_url)
    pool = client.connection_pool
    # The class the URL's scheme chose (TCP, TLS or a Unix socket), packing in C.
    pool.connection_class = _HIREDIS_PACKING.get(pool.connection_class, pool.connection_class)
    return client


class _HiredisPacking(AbstractConnection):
    """Packs commands with hiredis's C packer, as redis-py's own synchronous client does
    when hiredis is installed; its asyncio client packs in Python, one argument at a time,
    which was a tenth of the journey worker's CPU (bench/RESULTS.md). Same bytes on the wire
    (`tests/test_redis_packing.py`)."""

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        """The RESP bytes of one command (a first argument like `CONFIG GET` is split)."""
        first = args[0]
        if isinstance(first, str):
            args = (*first.encode().split(), *args[1:])
        elif isinstance(first, bytes) and b" " in first:
            args = (*first.split(), *args[1:])
        # hiredis's stub types a tuple of one item; its packer takes any number.
        try:
            return [hiredis.pack_command(args)]  # type: ignore[arg-type]
        except TypeError:
            pass  # rarely: a bytearray or memoryview, which hiredis takes only as bytes
        values = tuple(bytes(a) if isinstance(a, bytearray | memoryview) else a for a in args)
        try:
            return [hiredis.pack_command(values)]  # type: ignore[arg-type]
        except TypeError as exc:
            # What redis-py's packer raises for a value it cannot send (None, a bool...).
            raise DataError(str(exc)) from exc


class _PackedConnection(_HiredisPacking, Connection):
    """A TCP connection packing with hiredis."""


class _PackedSSLConnection(_HiredisPacking, SSLConnection):
    """A TLS connection packing with hiredis."""


class _PackedUnixConnection(_HiredisPacking, UnixDomainSocketConnection):
    """A Unix socket connection packing with hiredis."""


_HIREDIS_PACKING: dict[type[AbstractConnection], type[AbstractConnection]] = {
    Connection: _PackedConnection,
    SSLConnection: _PackedSSLConnection,
    UnixDomainSocketConnection: _PackedUnixConnection,
}
