"""The API process's PostgreSQL connections to the audit store: a small bounded pool.

Connections open on first use (so the API starts, and answers 503s, while PostgreSQL is
away) and are reused by later requests; one that failed is dropped rather than returned.
A connection serves one request at a time: an export holds its transaction open while it
streams, so sharing one connection between requests would mix their transactions.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import psycopg

from orchestrator.api.errors import ApiError
from orchestrator.audit.db import DatabaseUnavailableError, connect, require_schema
from orchestrator.errors import ConfigurationError
from orchestrator.infra.settings import redacted_url

__all__ = ["AuditDatabase", "Connection"]

Connection = psycopg.AsyncConnection[tuple[Any, ...]]

# Enough for a few concurrent exports beside queries; PostgreSQL's default limit is 100.
_POOL_SIZE = 8


class AuditDatabase:
    """At most `size` connections to `url`, lent one request at a time."""

    def __init__(self, url: str, size: int = _POOL_SIZE) -> None:
        self.url = url
        self._slots = asyncio.Semaphore(size)
        self._idle: list[Connection] = []
        self._schema_checked = False

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A connection for the block; PostgreSQL failures become `DatabaseUnavailableError`."""
        async with self._slots:
            conn = self._idle.pop() if self._idle else await self._open()
            try:
                yield conn
            except psycopg.DataError as exc:
                # A value PostgreSQL cannot hold (a NUL byte, a date out of range): the request's.
                raise ApiError(
                    422,
                    "invalid_request",
                    f"a value of the request cannot be searched for "
                    f"({' '.join(str(exc).split())}): fix it",
                ) from exc
            except psycopg.OperationalError as exc:
                raise DatabaseUnavailableError(
                    f"PostgreSQL at {redacted_url(self.url)} failed mid-request "
                    f"({' '.join(str(exc).split())}): try again"
                ) from exc
            finally:
                # Reused only if it is idle: no transaction left open by a broken stream.
                healthy = not conn.closed and (
                    conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
                )
                if healthy:
                    self._idle.append(conn)
                else:
                    with contextlib.suppress(psycopg.Error, OSError):
                        await conn.close()

    async def _open(self) -> Connection:
        conn = await connect(self.url)
        if not self._schema_checked:
            try:
                await require_schema(conn)
            except ConfigurationError:
                await conn.close()
                raise
            self._schema_checked = True
        return conn

    async def ping(self) -> str | None:
        """None when PostgreSQL answers; else why not (for `/readyz`).

        A schema behind this program's (`db upgrade` not run) still counts as answering:
        readiness is about reachability, and ingest and journeys work without the audit
        store; the audit routes name the missing upgrade themselves.
        """
        try:
            async with asyncio.timeout(2), self.connection() as conn:
                await conn.execute("SELECT 1")
        except ConfigurationError:
            return None
        except (DatabaseUnavailableError, psycopg.Error, TimeoutError) as exc:
            return f"PostgreSQL: {exc}"
        return None

    async def close(self) -> None:
        """Close every idle connection (the lifespan's end: no request is running)."""
        while self._idle:
            with contextlib.suppress(psycopg.Error, OSError):
                await self._idle.pop().close()
