"""Exact per-journey counts, read from the audit store.

The runtime's live counters (Redis) are at-least-once: a batch replayed after a crash counts
twice. The store holds each record exactly once, so counting its rows is exact, though it
lags the live counters by the sink's delay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

__all__ = ["JourneyCounts", "journey_counts"]

Connection = psycopg.AsyncConnection[tuple[Any, ...]]

# One grouped scan of the journey's rows (index `audit_records_journey_at`): sends by
# channel, suppressions and exits by their reason (never a personal field, so not sealed).
_COUNTS = (
    "SELECT kind, CASE WHEN kind = 'send' THEN channel ELSE body->>'reason' END, count(*)"
    " FROM audit_records WHERE journey = %s AND kind IN ('enter', 'send', 'suppress', 'exit')"
    " GROUP BY 1, 2"
)


@dataclass(slots=True)
class JourneyCounts:
    """What the store holds for one journey: entries, sends per channel, suppressions and
    exits per reason."""

    entered: int = 0
    sent: dict[str, int] = field(default_factory=dict)
    suppressed: dict[str, int] = field(default_factory=dict)
    exited: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, each mapping sorted by name."""
        return {
            "entered": self.entered,
            "sent": dict(sorted(self.sent.items())),
            "suppressed": dict(sorted(self.suppressed.items())),
            "exited": dict(sorted(self.exited.items())),
        }


async def journey_counts(conn: Connection, journey: str) -> JourneyCounts:
    """Count `journey`'s stored enter, send, suppress and exit records."""
    counts = JourneyCounts()
    cur = await conn.execute(_COUNTS, (journey,))
    for kind, name, count in await cur.fetchall():
        label = name if name is not None else "unknown"
        if kind == "enter":
            counts.entered += int(count)
        elif kind == "send":
            counts.sent[label] = int(count)
        elif kind == "suppress":
            counts.suppressed[label] = int(count)
        else:
            counts.exited[label] = int(count)
    return counts
