"""PostgreSQL connections and the schema's numbered SQL migrations.

Migrations are the files `migrations/NNNN_name.sql`, applied in order, each in its own
transaction together with its row in `schema_migrations`; an advisory lock keeps two
`orchestrator db upgrade` runs from applying the same file twice.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg

from orchestrator.errors import ConfigurationError, OrchestratorError
from orchestrator.infra.settings import redacted_url

__all__ = [
    "DatabaseUnavailableError",
    "Migration",
    "applied_versions",
    "connect",
    "connection",
    "current_version",
    "migrations",
    "require_schema",
    "upgrade",
]

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any constant shared by every upgrader: "orchestrator db" as a number.
_UPGRADE_LOCK = 0x0D_B0_0001


class DatabaseUnavailableError(OrchestratorError):
    """PostgreSQL did not answer or dropped the connection; trying again may succeed."""

    retriable = True
    dependency = "postgres"


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered SQL file of `orchestrator/audit/migrations/`."""

    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """Every migration shipped with the package, in version order."""
    found = []
    for entry in resources.files("orchestrator.audit").joinpath("migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


async def connect(url: str) -> psycopg.AsyncConnection[tuple[Any, ...]]:
    """An autocommit connection (transactions are explicit blocks); one line if it fails."""
    try:
        return await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        detail = " ".join(str(exc).split())
        raise DatabaseUnavailableError(
            f"PostgreSQL at {redacted_url(url)} is not reachable ({detail}): start it "
            "(deploy/local/postgres.sh start) or fix ORCHESTRATOR_DATABASE_URL"
        ) from exc


@contextlib.asynccontextmanager
async def connection(url: str) -> AsyncIterator[psycopg.AsyncConnection[tuple[Any, ...]]]:
    """`connect(url)`, closed when the block ends."""
    conn = await connect(url)
    try:
        yield conn
    finally:
        await conn.close()


async def current_version(conn: psycopg.AsyncConnection[tuple[Any, ...]]) -> int:
    """The newest migration applied, 0 on an empty database."""
    cur = await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
    row = await cur.fetchone()
    if not row or not row[0]:
        return 0
    cur = await conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def upgrade(conn: psycopg.AsyncConnection[tuple[Any, ...]]) -> list[Migration]:
    """Apply every migration newer than the database's version; returns those applied."""
    applied = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_UPGRADE_LOCK,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
    for migration in migrations():
        async with conn.transaction():
            # Re-read under the lock: another upgrader may have applied it meanwhile.
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_UPGRADE_LOCK,))
            if migration.version in await applied_versions(conn):
                continue
            await conn.execute(migration.sql.encode())
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
        applied.append(migration)
    return applied


async def applied_versions(conn: psycopg.AsyncConnection[tuple[Any, ...]]) -> set[int]:
    """The versions of the migrations applied (a set: a migration numbered below the newest
    applied one, merged in later, is applied too, not skipped)."""
    if not await current_version(conn):
        return set()
    cur = await conn.execute("SELECT version FROM schema_migrations")
    return {int(r[0]) for r in await cur.fetchall()}


async def require_schema(conn: psycopg.AsyncConnection[tuple[Any, ...]]) -> None:
    """Raise `ConfigurationError` unless every shipped migration has been applied."""
    missing = sorted({m.version for m in migrations()} - await applied_versions(conn))
    if missing:
        have = await current_version(conn)
        raise ConfigurationError(
            f"the audit store's schema is at version {have} without "
            f"{', '.join(f'{v:04d}' for v in missing)}, which this program needs: "
            "run `orchestrator db upgrade`"
        )
