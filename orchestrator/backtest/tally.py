"""Counting what one side of a backtest did, and how the draft's messages differ.

Every count is keyed by journey, step, channel, reason or hour, never by customer, so a
tally stays small however many customers are replayed; only a bounded sample of customers
whose messages differ is kept.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from orchestrator import jsonwire
from orchestrator.engine.actions import Action, Entered, Exited, Sent, Suppressed
from orchestrator.journey.dependencies import provider_of
from orchestrator.timefmt import format_instant

__all__ = ["Changes", "SideTally", "message_of"]

_HOUR = 3600


def message_of(sent: Sent) -> dict[str, Any]:
    """A sent message as the report shows it: where, when, on which channel, rendered."""
    return {
        "at": format_instant(sent.at),
        "journey": sent.journey,
        "version": sent.version,
        "step": sent.step,
        "channel": sent.channel,
        "template": sent.template,
        "content": sent.content,
    }


def _identity(sent: Sent) -> tuple[str, str, str, str, float, bytes]:
    """What makes two versions' messages the same message (versions and ids aside)."""
    return (
        sent.journey,
        sent.step,
        sent.channel,
        sent.template,
        sent.at,
        jsonwire.dumps(sent.content),
    )


@dataclass(slots=True)
class SideTally:
    """One side's counts: entries, sends, suppressions, exits, and sends per provider hour."""

    entries: Counter[str] = field(default_factory=Counter)
    sends: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    suppressions: Counter[tuple[str, str]] = field(default_factory=Counter)
    exits: Counter[tuple[str, str]] = field(default_factory=Counter)
    hourly: Counter[tuple[str, int]] = field(default_factory=Counter)

    def add(self, actions: Iterable[Action]) -> None:
        """Count one customer's actions."""
        for action in actions:
            if isinstance(action, Entered):
                self.entries[action.journey] += 1
            elif isinstance(action, Sent):
                self.sends[(action.journey, action.step, action.channel)] += 1
                hour = int(action.at // _HOUR) * _HOUR
                self.hourly[(provider_of(action.channel, action.content), hour)] += 1
            elif isinstance(action, Suppressed):
                self.suppressions[(action.journey, action.reason)] += 1
            elif isinstance(action, Exited):
                self.exits[(action.journey, action.reason)] += 1

    def peaks(self) -> dict[str, tuple[int, int]]:
        """Per provider: (sends in its busiest hour, that hour's start)."""
        peaks: dict[str, tuple[int, int]] = {}
        for (provider, hour), count in sorted(self.hourly.items()):
            if count > peaks.get(provider, (0, 0))[0]:
                peaks[provider] = (count, hour)
        return peaks

    def conversion(self, journey: str) -> float | None:
        """Goals per entry of a journey (None without entries)."""
        entries = self.entries.get(journey, 0)
        return self.exits.get((journey, "goal"), 0) / entries if entries else None

    def journeys(self) -> set[str]:
        """Every journey with anything counted."""
        return (
            set(self.entries)
            | {k[0] for k in self.sends}
            | {k[0] for k in self.exits}
            | {k[0] for k in self.suppressions}
        )

    def to_json(self) -> dict[str, Any]:
        """Plain JSON: lists of rows, sorted."""
        return {
            "entries": dict(sorted(self.entries.items())),
            "sends": [
                {"journey": j, "step": s, "channel": c, "count": n}
                for (j, s, c), n in sorted(self.sends.items())
            ],
            "suppressions": [
                {"journey": j, "reason": r, "count": n}
                for (j, r), n in sorted(self.suppressions.items())
            ],
            "exits": [
                {"journey": j, "reason": r, "count": n} for (j, r), n in sorted(self.exits.items())
            ],
            "goals": {j: self.exits.get((j, "goal"), 0) for j in sorted(self.entries)},
            "conversion": {j: self.conversion(j) for j in sorted(self.entries)},
            "hourly": [
                {"provider": p, "hour": format_instant(h), "sends": n}
                for (p, h), n in sorted(self.hourly.items())
            ],
        }


@dataclass(slots=True)
class Changes:
    """Messages only one side sent, counted by (journey, step, channel), and a sample of the
    customers concerned with both sides' messages."""

    sample_size: int = 5
    customers: int = 0
    added: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    removed: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    sample: list[dict[str, Any]] = field(default_factory=list)

    def compare(
        self, customer_id: str, deployed: Iterable[Action], draft: Iterable[Action]
    ) -> None:
        """Count one customer's differences, keeping them in the sample while it has room."""
        before = [a for a in deployed if isinstance(a, Sent)]
        after = [a for a in draft if isinstance(a, Sent)]
        old = Counter(_identity(s) for s in before)
        new = Counter(_identity(s) for s in after)
        if old == new:
            return
        self.customers += 1
        for key, count in (new - old).items():
            self.added[key[:3]] += count
        for key, count in (old - new).items():
            self.removed[key[:3]] += count
        if len(self.sample) < self.sample_size:
            self.sample.append(
                {
                    "customer_id": customer_id,
                    "deployed": [message_of(s) for s in before],
                    "draft": [message_of(s) for s in after],
                }
            )

    def to_json(self) -> dict[str, Any]:
        """Plain JSON."""
        return {
            "customers": self.customers,
            "added": [
                {"journey": j, "step": s, "channel": c, "count": n}
                for (j, s, c), n in sorted(self.added.items())
            ],
            "removed": [
                {"journey": j, "step": s, "channel": c, "count": n}
                for (j, s, c), n in sorted(self.removed.items())
            ],
            "sample": self.sample,
        }
