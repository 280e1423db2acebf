"""A single node's connections pack commands with hiredis: the same bytes as redis-py's own
packer, and the same error for what cannot be sent."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection, Connection
from redis.exceptions import DataError
from redis.typing import EncodableT

from orchestrator.infra.redisclient import connect_redis
from orchestrator.infra.settings import Settings
from tests.runtime_harness import isolated_settings


def _view(raw: bytes) -> memoryview:
    return memoryview(raw)


ARGUMENTS = st.one_of(
    st.binary(max_size=64),
    st.text(max_size=16),
    st.integers(),
    st.floats(allow_nan=False),
    st.binary(max_size=8).map(_view),
    st.binary(max_size=8).map(bytearray),
)
NAMES = st.sampled_from(["SET", b"GET", "CONFIG GET", b"CLIENT SETNAME", "EVAL"])


def _packed_connection() -> AbstractConnection:
    # What `connect_redis` gives a single node's pool to make connections of.
    client = connect_redis(Settings(redis_url="redis://127.0.0.1:1/0"))
    assert isinstance(client, Redis)
    return client.connection_pool.connection_class()


@given(NAMES, st.lists(ARGUMENTS, max_size=12))
def test_hiredis_packs_the_same_bytes_as_redis_py(
    name: str | bytes, arguments: list[EncodableT]
) -> None:
    packed = _packed_connection()
    assert type(packed) is not Connection
    assert b"".join(packed.pack_command(name, *arguments)) == b"".join(
        Connection().pack_command(name, *arguments)
    )


@pytest.mark.parametrize("value", [None, True, object()])
def test_what_cannot_be_sent_is_a_data_error_as_before(value: object) -> None:
    with pytest.raises(DataError):
        Connection().pack_command("SET", "k", value)  # type: ignore[arg-type]
    with pytest.raises(DataError):
        _packed_connection().pack_command("SET", "k", value)  # type: ignore[arg-type]


async def test_a_client_round_trips_values_through_hiredis_packing(
    infrastructure: Settings,
) -> None:
    settings = isolated_settings(infrastructure)
    redis = connect_redis(settings)
    key = f"{settings.redis_prefix}packing"
    value = bytes(range(256)) * 40  # larger than redis-py's own chunking threshold
    try:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, mapping={"bytes": memoryview(value), "text": "é", "float": 0.1})
            pipe.eval("return redis.call('HGET', KEYS[1], ARGV[1])", 1, key, "bytes")
            results = await pipe.execute()
        assert results[1] == value
        assert await redis.hmget(key, "text", "float") == ["é".encode(), b"0.1"]
    finally:
        await redis.delete(key)
        await redis.aclose()
