"""The on-disk store a backtest spools events into, so memory stays flat whatever the window.

Events are written as they are read from Kafka (partition by partition) into a SQLite file,
then read back one customer at a time: only one customer's events are ever in memory. The
file lives in a temporary directory that is removed when the spool is closed.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from orchestrator import jsonwire
from orchestrator.backtest.window import rank_of
from orchestrator.engine.events import Event, parse_event

__all__ = ["CustomerEvents", "EventSpool"]

_SCHEMA = """
CREATE TABLE events (
    customer_id TEXT NOT NULL,
    partition   INTEGER NOT NULL,
    offset      INTEGER NOT NULL,
    in_window   INTEGER NOT NULL,  -- 0: published before the window
    occurred_at REAL NOT NULL,
    event       BLOB NOT NULL
);
-- first_at: the customer's earliest window event (NULL: none, chosen for their past alone).
CREATE TABLE chosen (customer_id TEXT PRIMARY KEY, first_at REAL);
"""
_BATCH = 5000


@dataclass(frozen=True, slots=True)
class CustomerEvents:
    """One customer's spooled events: before the window (in topic order) and inside it."""

    customer_id: str
    before: list[Event]
    window: list[Event]


class EventSpool:
    """Spooled events in a temporary SQLite file; use as a context manager."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="orchestrator-backtest-")
        self.path = Path(self._dir.name) / "events.sqlite"
        self._db = sqlite3.connect(self.path)
        self._db.executescript(_SCHEMA)
        self._pending: list[tuple[str, int, int, int, float, bytes]] = []
        self.window_events = 0
        self.before_events = 0
        self.chosen = 0

    def __enter__(self) -> EventSpool:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Remove the file."""
        self._db.close()
        self._dir.cleanup()

    def add(self, event: Event, partition: int, offset: int, in_window: bool) -> None:
        """Spool one event (written in batches)."""
        body = jsonwire.dumps(event.to_wire())
        self._pending.append(
            (event.customer_id, partition, offset, int(in_window), event.occurred_at, body)
        )
        if in_window:
            self.window_events += 1
        else:
            self.before_events += 1
        if len(self._pending) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        """Write the pending batch."""
        if self._pending:
            self._db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", self._pending)
            self._db.commit()
            self._pending.clear()

    def choose(self, first: int | None, *, with_past: bool = False) -> int:
        """Pick the customers to replay: those with events in the window (with `with_past`,
        also those with only earlier ones: a journey they entered may act in the window),
        or only the `first` by stable hash. Returns how many were chosen."""
        self.flush()
        self._db.execute("CREATE INDEX events_customer ON events (customer_id, partition, offset)")
        self._db.create_function("rank_of", 1, rank_of, deterministic=True)
        limit = ""
        if first is not None:
            limit = f" ORDER BY rank_of(customer_id), customer_id LIMIT {int(first)}"
        self._db.execute(
            "INSERT INTO chosen SELECT customer_id, first_at FROM"  # noqa: S608 - `limit`: an int
            " (SELECT customer_id, min(CASE WHEN in_window = 1 THEN occurred_at END) AS first_at"
            f" FROM events GROUP BY customer_id{'' if with_past else ' HAVING max(in_window) = 1'})"
            f"{limit}"
        )
        self._db.commit()
        row = self._db.execute("SELECT count(*) FROM chosen").fetchone()
        self.chosen = int(row[0])
        return self.chosen

    def earliest(self) -> float | None:
        """When the earliest window event of any chosen customer occurred."""
        row = self._db.execute("SELECT min(first_at) FROM chosen").fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def first_at(self, customer_id: str) -> float | None:
        """When the earliest window event of a chosen customer occurred (None: not chosen)."""
        row = self._db.execute("SELECT first_at FROM chosen WHERE customer_id = ?", (customer_id,))
        found = row.fetchone()
        return None if found is None else float(found[0])

    def customers(self) -> Iterator[CustomerEvents]:
        """The chosen customers' events, one customer at a time, in customer id order."""
        rows = self._db.execute(
            "SELECT e.customer_id, e.in_window, e.event FROM events e"
            " JOIN chosen c ON c.customer_id = e.customer_id"
            " ORDER BY e.customer_id, e.partition, e.offset"
        )
        current: CustomerEvents | None = None
        for customer_id, in_window, body in rows:
            if current is None or current.customer_id != customer_id:
                if current is not None:
                    yield current
                current = CustomerEvents(customer_id, [], [])
            (current.window if in_window else current.before).append(_event(body))
        if current is not None:
            yield current


def _event(body: bytes) -> Event:
    return parse_event(jsonwire.loads(body))
