"""Live tally of the interaction log and the receipts, printed as progress and a summary."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, TextIO

__all__ = ["ChannelCounts", "Tally"]

_RECEIPTS = {"message.sent": "sent", "message.delivered": "delivered", "message.failed": "failed"}


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
    # Per channel: receipts (sent, delivered, failed), replies and opt-outs read on `events`.
    receipts: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    # A receipt may be published twice (docs/channels.md): it counts once, as it applies once.
    receipt_ids: set[str] = field(default_factory=set)
    # So may an interaction record: a worker stopped between producing a batch's records and
    # settling its outbox produces them again (DESIGN.md, invariant 3). Each counts once, as
    # the audit store keeps it once and the connectors send its message once.
    record_ids: set[str] = field(default_factory=set)

    def add_event(self, record: dict[str, Any]) -> None:
        """Count one `events` record if it is a receipt, a reply or an opt-out by keyword."""
        name, properties = record.get("name"), record.get("properties") or {}
        if name in _RECEIPTS:
            kind = _RECEIPTS[name]
            if kind == "failed" and "status" in properties:
                kind = "undelivered"  # Twilio's callback, after the provider took it
        elif name == "message.replied":
            kind = "replies"
        elif name == "consent.updated" and properties.get("source") == "inbound stop":
            kind = "opt-outs"
        else:
            return
        event_id = str(record.get("event_id"))
        if event_id not in self.receipt_ids:
            self.receipt_ids.add(event_id)
            channel = str(properties.get("channel") or record.get("channel") or "")
            self.receipts[channel][kind] += 1

    @property
    def records(self) -> int:
        """Distinct records read on `interactions` (by `record_id`)."""
        return len(self.record_ids)

    def add(self, record: dict[str, Any]) -> None:
        """Count one interaction record (once, however often it is on the topic)."""
        record_id = str(record.get("record_id"))
        if record_id in self.record_ids:
            return
        self.record_ids.add(record_id)
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


@dataclass(frozen=True, slots=True)
class ChannelCounts:
    """What the providers counted on their side: accepted messages and keyword confirmations."""

    delivered: Counter[str]
    confirmations: int
    routed: tuple[str, ...]  # the channels connector workers deliver in the demo


def channel_table(tally: Tally, providers: ChannelCounts) -> list[str]:
    """The per-channel lines: produced to `outbound`, taken by the provider, receipts back."""
    sent = tally.totals()[1]
    lines = [
        f"{'channel':9} {'outbound':>8} {'provider':>8} {'sent':>6} {'deliv.':>6} "
        f"{'failed':>6} {'replies':>7} {'opt-outs':>8} {'confirm.':>8}"
    ]
    for channel in sorted(set(sent) | set(providers.delivered)):
        r = tally.receipts[channel]
        if channel not in providers.routed:
            lines.append(f"{channel:9} {sent[channel]:>8}  (no receiver in the demo)")
            continue
        # in_app has no provider: the inbox is ours, so its "sent" receipt is the delivery.
        taken = r["sent"] if channel == "in_app" else providers.delivered[channel]
        confirmations = providers.confirmations if channel == "sms" else 0
        lines.append(
            f"{channel:9} {sent[channel]:>8} {taken:>8} {r['sent']:>6} {r['delivered']:>6} "
            f"{r['failed'] + r['undelivered']:>6} {r['replies']:>7} {r['opt-outs']:>8} "
            f"{confirmations:>8}"
        )
    return lines
