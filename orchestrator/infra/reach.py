"""Reaching Kafka and Redis in bounded time, and naming the address and the fix when not.

Library errors (aiokafka's, redis-py's, socket timeouts) are turned into
`DependencyUnavailableError` / `DependencyRefusedError` here, at the edge, so every caller
(and the CLI's one line) can say which service at which address failed and what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable

from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NoBrokersAvailable,
    NodeNotReadyError,
    RequestTimedOutError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from orchestrator.errors import (
    DependencyRefusedError,
    DependencyUnavailableError,
    OrchestratorError,
)
from orchestrator.infra.redisclient import connect_redis
from orchestrator.infra.settings import Settings, redacted_url

__all__ = [
    "KAFKA_CONNECT_SECONDS",
    "KAFKA_FIX",
    "REDIS_CONNECT_SECONDS",
    "REDIS_FIX",
    "check_redis",
    "kafka_failure",
    "redis_failure",
    "start_kafka_client",
]


# aiokafka retries its bootstrap for request_timeout_ms (40 s) against a host that accepts
# connections but never answers; a command should give up sooner and say so.
KAFKA_CONNECT_SECONDS = 15.0
# redis-py waits for the OS's TCP connect timeout (minutes) by default.
REDIS_CONNECT_SECONDS = 5.0

KAFKA_FIX = (
    "start the broker (`make infra` for the local one) "
    "or point ORCHESTRATOR_KAFKA_BOOTSTRAP at a running one"
)
REDIS_FIX = (
    "start Redis (`make infra` for the local one) or point ORCHESTRATOR_REDIS_URL at a running one"
)

_KAFKA_UNREACHABLE = (
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    NoBrokersAvailable,
    RequestTimedOutError,
    OSError,
    TimeoutError,
)


def _detail(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError) and not str(exc):
        return "no answer in time"
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, OSError) and cause.errno:
        # redis-py wraps the socket error in a sentence repeating the address.
        return os.strerror(cause.errno).lower()
    if isinstance(exc, KafkaConnectionError):
        # Its text lists resolved address tuples; the address is already in the message.
        return "connection refused or no broker answered"
    text = str(exc).strip().rstrip(".") or type(exc).__name__
    return text.removeprefix(f"{type(exc).__name__}: ")


def kafka_failure(bootstrap: str, exc: BaseException) -> OrchestratorError:
    """The typed error for an aiokafka (or socket) failure talking to `bootstrap`."""
    if isinstance(exc, _KAFKA_UNREACHABLE):
        return DependencyUnavailableError("Kafka", bootstrap, KAFKA_FIX, _detail(exc))
    return DependencyRefusedError(
        f"Kafka at {bootstrap} refused the request ({type(exc).__name__}: {_detail(exc)}): "
        "check the broker's log and the topic's configuration"
    )


def redis_failure(url: str, exc: BaseException) -> OrchestratorError:
    """The typed error for a redis-py (or socket) failure talking to `url`."""
    address = redacted_url(url)
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)):
        return DependencyUnavailableError("Redis", address, REDIS_FIX, _detail(exc))
    return DependencyRefusedError(
        f"Redis at {address} refused the request ({type(exc).__name__}: {_detail(exc)}): "
        "check ORCHESTRATOR_REDIS_URL (password, database) and ORCHESTRATOR_REDIS_CLUSTER"
    )


async def start_kafka_client(
    start: Callable[[], Awaitable[None]],
    close: Callable[[], Awaitable[None]],
    bootstrap: str,
) -> None:
    """`await start()` within `KAFKA_CONNECT_SECONDS`.

    On failure the client is closed (its half-open connections would leak otherwise) and a
    `DependencyUnavailableError` naming `bootstrap` is raised.
    """
    try:
        async with asyncio.timeout(KAFKA_CONNECT_SECONDS):
            await start()
    except (KafkaError, OSError, TimeoutError) as exc:
        # Closing a client whose start was cancelled can itself wait on the dead broker.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await close()
        raise kafka_failure(bootstrap, exc) from exc


async def check_redis(settings: Settings) -> None:
    """PING Redis; raise `DependencyUnavailableError` if it does not answer in time."""
    client = connect_redis(settings)
    try:
        async with asyncio.timeout(REDIS_CONNECT_SECONDS):
            await client.ping()
    except (RedisError, OSError, TimeoutError) as exc:
        raise redis_failure(settings.redis_url, exc) from exc
    finally:
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            await client.aclose()
