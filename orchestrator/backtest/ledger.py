"""The sends a verification compares, on disk: what was replayed and what the live system
sent (from the audit store), plus the facts that explain differences.

Both sides go into SQLite next to the event spool, so a long window's sends never sit in
memory; the comparison is a join, read back row by row.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.engine.actions import Sent

__all__ = ["LIVE_ONLY", "REPLAY_ONLY", "Difference", "Ledger", "Operated"]

LIVE_ONLY = "live only"
REPLAY_ONLY = "replay only"

_SCHEMA = """
CREATE TABLE replayed (message_id TEXT PRIMARY KEY, customer_id TEXT, journey TEXT,
    version INTEGER, step TEXT, channel TEXT, template TEXT, instance_id TEXT, at REAL);
CREATE TABLE live (message_id TEXT PRIMARY KEY, customer_id TEXT, journey TEXT,
    version INTEGER, step TEXT, channel TEXT, template TEXT, instance_id TEXT, at REAL);
CREATE TABLE late (customer_id TEXT, event_id TEXT, occurred_at REAL, late_by REAL);
CREATE INDEX late_customer ON late (customer_id, occurred_at);
CREATE TABLE failed (message_id TEXT PRIMARY KEY, error TEXT);
CREATE TABLE fallback (message_id TEXT PRIMARY KEY, failed_id TEXT);
CREATE TABLE entered (customer_id TEXT, instance_id TEXT, PRIMARY KEY (customer_id, instance_id));
"""
_SEND_COLUMNS = (
    "message_id, customer_id, journey, version, step, channel, template, instance_id, at"
)


@dataclass(frozen=True, slots=True)
class Operated:
    """An operator action on a journey inside the window (deploy, rollback, pause...)."""

    journey: str
    at: float
    action: str
    version: int


@dataclass(frozen=True, slots=True)
class Difference:
    """A message one side sent and the other did not, or sent differently."""

    message_id: str
    customer_id: str
    journey: str
    step: str
    instance_id: str
    at: float
    difference: str


class Ledger:
    """Replayed and live sends and the explaining facts, in a SQLite file at `path`."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path)
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the file (its directory is the spool's, removed with it)."""
        self._db.close()

    def replayed(self, sends: list[Sent]) -> None:
        """Store replayed sends."""
        self._db.executemany(
            f"INSERT OR REPLACE INTO replayed ({_SEND_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",  # noqa: S608
            [
                (s.message_id, s.customer_id, s.journey, s.version, s.step, s.channel, s.template,
                 s.instance_id, s.at)
                for s in sends
            ],
        )  # fmt: skip

    def live(self, record: dict[str, Any], at: float) -> None:
        """Store a live `send` record."""
        self._db.execute(
            f"INSERT OR REPLACE INTO live ({_SEND_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",  # noqa: S608
            (record["message_id"], record["customer_id"], record["journey"], record["version"],
             record["step"], record["channel"], record["template"], record["instance_id"], at),
        )  # fmt: skip

    def late(self, customer_id: str, event_id: str, occurred_at: float, late_by: float) -> None:
        """Store a `late` record: the live worker applied this event after its time."""
        self._db.execute(
            "INSERT INTO late VALUES (?, ?, ?, ?)", (customer_id, event_id, occurred_at, late_by)
        )

    def failed(self, message_id: str, error: str, fallback_id: str) -> None:
        """Store a provider failure, and the id of the message that falls back for it."""
        self._db.execute("INSERT OR IGNORE INTO failed VALUES (?, ?)", (message_id, error))
        self._db.execute("INSERT OR IGNORE INTO fallback VALUES (?, ?)", (fallback_id, message_id))

    def entered(self, customer_id: str, instance_id: str) -> None:
        """Store an `enter` record inside the window."""
        self._db.execute("INSERT OR IGNORE INTO entered VALUES (?, ?)", (customer_id, instance_id))

    def commit(self) -> None:
        """Make what was stored readable to the comparison."""
        self._db.commit()

    def counts(self) -> tuple[int, int, int]:
        """(live sends, replayed sends, identical on both sides)."""
        row = self._db.execute(
            "SELECT (SELECT count(*) FROM live), (SELECT count(*) FROM replayed),"
            " (SELECT count(*) FROM live l JOIN replayed r USING (message_id)"
            "  WHERE l.version = r.version AND l.step = r.step AND l.channel = r.channel"
            "  AND l.template = r.template)"
        ).fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    def differences(self) -> Iterator[Difference]:
        """Every message on one side only, or on both with another version, step or channel."""
        yield from self._rows(
            "SELECT l.message_id, l.customer_id, l.journey, l.step, l.instance_id, l.at,"
            " ? FROM live l LEFT JOIN replayed r USING (message_id) WHERE r.message_id IS NULL",
            LIVE_ONLY,
        )
        yield from self._rows(
            "SELECT r.message_id, r.customer_id, r.journey, r.step, r.instance_id, r.at,"
            " ? FROM replayed r LEFT JOIN live l USING (message_id) WHERE l.message_id IS NULL",
            REPLAY_ONLY,
        )
        yield from self._rows(
            "SELECT l.message_id, l.customer_id, l.journey, l.step, l.instance_id, l.at,"
            " 'live v' || l.version || ' ' || l.channel || ' ' || l.template"
            " || ', replay v' || r.version || ' ' || r.channel || ' ' || r.template"
            " FROM live l JOIN replayed r USING (message_id)"
            " WHERE l.version != r.version OR l.step != r.step OR l.channel != r.channel"
            " OR l.template != r.template"
        )

    def _rows(self, statement: str, *params: str) -> Iterator[Difference]:
        for row in self._db.execute(statement + " ORDER BY 6, 1", params):
            yield Difference(*row)

    def late_before(self, customer_id: str, at: float) -> tuple[str, float] | None:
        """A late event of the customer that occurred at or before `at`: (event id, late by)."""
        row = self._db.execute(
            "SELECT event_id, late_by FROM late WHERE customer_id = ? AND occurred_at <= ?"
            " ORDER BY occurred_at LIMIT 1",
            (customer_id, at),
        ).fetchone()
        return None if row is None else (str(row[0]), float(row[1]))

    def fallback_for(self, message_id: str) -> tuple[str, str] | None:
        """(failed message id, its error) when `message_id` is a fallback send."""
        row = self._db.execute(
            "SELECT f.failed_id, x.error FROM fallback f JOIN failed x ON x.message_id ="
            " f.failed_id WHERE f.message_id = ?",
            (message_id,),
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def failed_error(self, message_id: str) -> str | None:
        """The provider's error when this message failed live."""
        row = self._db.execute(
            "SELECT error FROM failed WHERE message_id = ?", (message_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def entered_in_window(self, customer_id: str, instance_id: str) -> bool:
        """Whether the instance's `enter` record is inside the window."""
        row = self._db.execute(
            "SELECT 1 FROM entered WHERE customer_id = ? AND instance_id = ?",
            (customer_id, instance_id),
        ).fetchone()
        return row is not None
