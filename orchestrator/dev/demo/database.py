"""Each demo run's own audit store: a PostgreSQL database named after the run.

The database lives on the server `ORCHESTRATOR_DATABASE_URL` names, beside the configured
store, and is created empty, so the summary's counts are this run's alone. While a demo runs
it holds a connection to its database: that is how the next demo tells a run in use from one
left behind (PostgreSQL refuses to drop a database somebody is connected to, and
`pg_stat_activity` shows who is), and it keeps that run's topics and keys too.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

__all__ = ["DemoDatabase", "drop_idle_databases"]

# Run names are `demo<unix seconds>` (run.py): the database is called the same.
_RUN_NAME = r"^demo[0-9]+$"
# Any database on the server will do to create or drop another: this one always exists.
_MAINTENANCE_DATABASE = "postgres"


def database_url(server_url: str, database: str) -> str:
    """`server_url` with its database replaced by `database`."""
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def _maintenance(server_url: str) -> psycopg.AsyncConnection[tuple[Any, ...]]:
    # CREATE and DROP DATABASE cannot run inside a transaction block.
    return await psycopg.AsyncConnection.connect(
        database_url(server_url, _MAINTENANCE_DATABASE), autocommit=True
    )


async def drop_idle_databases(server_url: str) -> tuple[list[str], list[str]]:
    """Drop the databases earlier demo runs left; keep those a running demo is connected to.

    Returns (dropped, kept), by name. A demo that connects between the check and the drop
    makes the drop fail (the database is in use), and its database is kept too.
    """
    dropped: list[str] = []
    kept: list[str] = []
    async with await _maintenance(server_url) as admin:
        rows = await (
            await admin.execute(
                "SELECT d.datname, count(a.pid) FROM pg_database d "
                "LEFT JOIN pg_stat_activity a ON a.datname = d.datname "
                "WHERE d.datname ~ %s GROUP BY d.datname ORDER BY d.datname",
                (_RUN_NAME,),
            )
        ).fetchall()
        for name, sessions in rows:
            if sessions:
                kept.append(name)
                continue
            try:
                await admin.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))
            except psycopg.errors.ObjectInUse:
                kept.append(name)
            else:
                dropped.append(name)
    return dropped, kept


class DemoDatabase:
    """One run's database: created empty, held open while the demo runs, counted at the end."""

    def __init__(self, server_url: str, name: str) -> None:
        self.name = name
        self.url = database_url(server_url, name)
        self._server_url = server_url
        self._held: psycopg.AsyncConnection[tuple[Any, ...]] | None = None

    async def create(self) -> None:
        """Create the (empty) database and connect to it, marking it in use."""
        async with await _maintenance(self._server_url) as admin:
            await admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
        self._held = await psycopg.AsyncConnection.connect(self.url, autocommit=True)

    async def stored_records(self) -> int:
        """How many interaction records the audit sink has stored so far."""
        if self._held is None:
            raise RuntimeError("DemoDatabase.create() was not called")
        row = await (await self._held.execute("SELECT count(*) FROM audit_records")).fetchone()
        return int(row[0]) if row else 0

    async def close(self) -> None:
        """Let go of the database: the next demo drops it."""
        if self._held is not None:
            await self._held.close()
            self._held = None
