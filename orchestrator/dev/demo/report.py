"""Live tally of the interaction log, printed as progress lines and a closing summary."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, TextIO

__all__ = ["Tally"]


@dataclass(slots=True)
class _JourneyTally:
    entered: int = 0
    sent: Counter[str] = field(default_factory=Counter)
    suppressed: Counter[str] = field(default_factory=Counter)
    exits: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class Tally:
    """Counts interaction records per journey; keeps a few sends to show what went out."""

    journeys: defaultdict[str, _JourneyTally] = field(
        default_factory=lambda: defaultdict(_JourneyTally)
    )
    inbound: int = 0
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, record: dict[str, Any]) -> None:
        """Count one interaction record."""
        kind = record.get("type")
        if kind == "inbound":
            self.inbound += 1
            return
        journey = record.get("journey")
        if not isinstance(journey, str) or kind not in {"enter", "send", "suppress", "exit"}:
            return
        tally = self.journeys[journey]
        if kind == "enter":
            tally.entered += 1
        elif kind == "send":
            tally.sent[record["channel"]] += 1
            self.examples.setdefault(f"{journey}/{record['channel']}", record)
        elif kind == "suppress":
            tally.suppressed[record["reason"]] += 1
        else:
            tally.exits[record["reason"]] += 1

    def totals(self) -> tuple[int, Counter[str], int, int, int]:
        """(entered, sent by channel, suppressed, goals, exits) over all journeys."""
        sent: Counter[str] = Counter()
        entered = suppressed = goals = exits = 0
        for tally in self.journeys.values():
            entered += tally.entered
            sent.update(tally.sent)
            suppressed += sum(tally.suppressed.values())
            goals += tally.exits["goal"]
            exits += sum(tally.exits.values())
        return entered, sent, suppressed, goals, exits

    def progress_line(self, day: float, published: int) -> str:
        """One line of live progress."""
        entered, sent, suppressed, goals, exits = self.totals()
        channels = " ".join(f"{c}={n}" for c, n in sorted(sent.items()))
        return (
            f"day {day:5.2f} | events {published:>6} applied {self.inbound:>6} | "
            f"entered {entered:>5} | sent {sum(sent.values()):>5} ({channels}) | "
            f"suppressed {suppressed:>4} | goals {goals:>4} | exits {exits:>5}"
        )

    def write_summary(self, out: TextIO) -> None:
        """The closing per-journey table and a few rendered messages."""
        out.write(
            f"\n{'journey':26} {'entered':>7} {'sent':>6} {'suppr':>6} {'goals':>6} "
            f"{'active':>6}  exits by reason / sends by channel\n"
        )
        for journey in sorted(self.journeys):
            t = self.journeys[journey]
            ended = sum(t.exits.values())
            reasons = ", ".join(f"{r} {n}" for r, n in t.exits.most_common())
            channels = ", ".join(f"{c} {n}" for c, n in t.sent.most_common())
            out.write(
                f"{journey:26} {t.entered:>7} {sum(t.sent.values()):>6} "
                f"{sum(t.suppressed.values()):>6} {t.exits['goal']:>6} "
                f"{t.entered - ended:>6}  {reasons or '-'} / {channels or '-'}\n"
            )
        suppressed: Counter[str] = Counter()
        for t in self.journeys.values():
            suppressed.update(t.suppressed)
        if suppressed:
            out.write(
                "suppressed by reason: "
                + ", ".join(f"{r} {n}" for r, n in suppressed.most_common())
                + "\n"
            )
        out.write("\nA few of the messages that went out:\n")
        for key in sorted(self.examples)[:6]:
            record = self.examples[key]
            content = record.get("content", {})
            text = (
                content.get("subject")
                or content.get("title")
                or content.get("body")
                or content.get("url")
                or ""
            )
            out.write(f"  {key:40} to {record['customer_id']}: {str(text)[:70]}\n")
