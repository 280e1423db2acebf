"""The summary's second half: what the rest of the product made of the run.

Every interaction record the workers wrote reached the run's own audit store (counted on
both sides and verified); one replying customer's timeline across channels; the journeys'
figures and an experiment's verdict (`orchestrator report`); the feedback the router put on
each team's topic beside where the rules say it belongs; and how to open the dashboard on
this run's data. The audit store and the measurement figures are read through the CLI, as a
user would (dev/ does not import audit/ or measure/: docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import urlsplit

from rich.console import Console
from rich.table import Table

from orchestrator import jsonwire
from orchestrator.dev.demo.database import DemoDatabase
from orchestrator.dev.demo.population import customer_id
from orchestrator.dev.demo.processes import DemoProcesses
from orchestrator.dev.demo.replies import Reply
from orchestrator.dev.demo.teams import expected_teams, routed_teams
from orchestrator.infra.settings import Settings
from orchestrator.journey.routing import RoutingTable

__all__ = ["Stores", "write_closing"]

# The library journey with an A/B split (journeys/win-back.yaml): its verdict is shown.
_SPLIT_JOURNEY = "win-back"
_WIDTH = 120
_TIMELINE_LINES = 14
# How long the audit sink and the feedback router may take to catch up after the last record.
_CATCH_UP_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Stores:
    """The run's audit store and the rules its feedback router routes with."""

    database: DemoDatabase
    rules: RoutingTable


async def write_closing(
    stores: Stores,
    settings: Settings,
    processes: DemoProcesses,
    out: TextIO,
    *,
    records: int,
    replies: list[Reply],
) -> list[str]:
    """Write the closing sections once the sink has stored the `records` the interactions
    topic holds and the router has routed the free-text `replies`; returns what did not add
    up (nothing on a good run)."""
    run = settings.topic_prefix.rstrip(".")
    stored = await wait_for_store(stores.database, records, _CATCH_UP_SECONDS)
    expected = expected_teams(stores.rules, run, replies)
    routed, others = await routed_teams(settings, expected.total(), _CATCH_UP_SECONDS)
    # Nothing is left to store or route: what follows reads a store at rest.
    await asyncio.to_thread(processes.stop, ["audit-sink", "feedback"])
    closing = Closing(settings, processes, out)
    closing.audit_store(records, stored)
    talkers = [r for r in replies if r.kind == "words"] or replies
    if talkers:
        closing.timeline(customer_id(run, talkers[0].number))
    closing.report()
    closing.feedback(expected, routed, others)
    closing.dashboard()
    return closing.problems


async def wait_for_store(database: DemoDatabase, records: int, within: float) -> int:
    """The records the audit sink has stored, once it holds `records` (or `within` s pass)."""
    deadline = time.monotonic() + within
    while True:
        stored = await database.stored_records()
        if stored >= records or time.monotonic() > deadline:
            return stored
        await asyncio.sleep(0.2)  # polling: the store has no notification to await


class Closing:
    """Writes the closing sections; `problems` collects what did not add up."""

    def __init__(self, settings: Settings, processes: DemoProcesses, out: TextIO) -> None:
        self.settings = settings
        self.processes = processes
        self.out = out
        self.problems: list[str] = []
        self.console = Console(file=out, width=_WIDTH, highlight=False)

    def _cli(self, *command: str) -> str:
        done = self.processes.run(*command)
        if done.returncode != 0:
            self.problems.append(f"`orchestrator {' '.join(command)}` failed: {done.stderr}")
        return done.stdout

    def audit_store(self, on_topic: int, stored: int) -> None:
        """Records on `interactions` against records stored, and `audit verify`'s result."""
        verified = self._cli("audit", "verify").strip().splitlines()
        database = urlsplit(self.settings.database_url).path[1:]
        table = Table(title=f"\nAudit store: database {database}")
        table.add_column("distinct records on interactions", justify="right")
        table.add_column("stored in the audit store", justify="right")
        table.add_column("orchestrator audit verify", no_wrap=True)
        table.add_row(str(on_topic), str(stored), verified[0] if verified else "failed")
        self.console.print(table)
        if stored != on_topic:
            self.problems.append(
                f"the audit store holds {stored} records, the interactions topic "
                f"{on_topic} distinct ones: "
                f"see {self.processes.log_dir / 'audit-sink.log'}"
            )

    def timeline(self, customer: str) -> None:
        """One customer's timeline around their reply: what they did and what we sent."""
        lines = self._cli("audit", "timeline", customer, "--limit", "500").splitlines()
        records = [jsonwire.loads(line) for line in lines if line.startswith("{")]
        shown = [r for r in records if _told(r)]
        # The lines up to the customer's reply and our answer to it.
        replied = next(
            (i for i, r in enumerate(shown) if _event_name(r) == "message.replied"), len(shown)
        )
        end = min(len(shown), replied + 3)
        table = Table(
            title=f"\nTimeline of {customer} (`orchestrator audit timeline {customer}`: "
            f"{len(records)} records; receipts and timers left out here)"
        )
        table.add_column("at", no_wrap=True)
        table.add_column("", no_wrap=True)  # in or out
        table.add_column("channel", no_wrap=True)
        table.add_column("journey / step", no_wrap=True, overflow="ellipsis", max_width=34)
        table.add_column("what", no_wrap=True, overflow="ellipsis", max_width=44)
        for row in shown[max(0, end - _TIMELINE_LINES) : end]:
            step = row["record"].get("step", "")
            where = f"{row['journey']} / {step}" if row["journey"] else ""
            at = row["at"][:16].replace("T", " ")
            way = "in" if row["direction"] == "inbound" else "out"
            table.add_row(at, way, row["channel"] or "", where, _what(row))
        self.console.print(table)

    def report(self) -> None:
        """`orchestrator report`'s journey figures and NPS/CSAT, and the split's verdict."""
        self.out.write(
            "\n$ orchestrator report   (journeys and surveys; task cycle times left out)\n"
        )
        full = self._cli("report").splitlines()
        tasks = next((i for i, line in enumerate(full) if line.startswith("Task ")), len(full))
        surveys = next(
            (i for i, line in enumerate(full) if "NPS (0-10)" in line or "CSAT (1-5)" in line),
            len(full),
        )
        self.out.write("\n".join(full[:tasks] + full[max(tasks, surveys) :]) + "\n")
        detail = self._cli("report", _SPLIT_JOURNEY).splitlines()
        start = next((i for i, line in enumerate(detail) if "Experiment at" in line), None)
        if start is None:
            self.out.write(f"({_SPLIT_JOURNEY}: no experiment figures yet)\n")
            return
        self.out.write(f"\n$ orchestrator report {_SPLIT_JOURNEY}   (its experiment)\n")
        # The experiment table and its verdict lines end where the next section starts.
        end = next(
            (i for i in range(start + 1, len(detail)) if _is_title(detail[i], detail, i)),
            len(detail),
        )
        self.out.write("\n".join(detail[start:end]) + "\n")

    def feedback(self, expected: Counter[str], routed: Counter[str], others: Counter[str]) -> None:
        """Per team: the replies the router put on `feedback.<team>` beside what the rules
        expect, and the survey comments it routed too."""
        table = Table(title="\nFeedback routed to the teams (`orchestrator feedback`)")
        table.add_column("team")
        table.add_column("topic")
        table.add_column("replies routed", justify="right")
        table.add_column("expected", justify="right")
        table.add_column("survey comments", justify="right")
        for team in sorted(set(expected) | set(routed) | set(others)):
            table.add_row(
                team,
                f"{self.settings.topic_prefix}feedback.{team}",
                str(routed[team]),
                str(expected[team]),
                str(others[team]),
            )
        self.console.print(table)
        self.out.write(
            f"{expected.total()} free-text replies (words, or a score with words) were sent; "
            f"the router routed {routed.total()} of them. A score with words answering a "
            f"survey's SMS is also a survey.answered with a comment: {others.total()} of those "
            "were routed too.\n"
        )
        if +routed != +expected:
            self.problems.append(
                f"the feedback router routed {dict(+routed)}, the rules expect "
                f"{dict(+expected)}: see {self.processes.log_dir / 'feedback.log'}"
            )

    def dashboard(self) -> None:
        """An operator key, and how to serve the dashboard on this run's data."""
        created = self._cli(
            "keys", "create", "--role", "operator", "--grant", "pii", "--name", "demo dashboard"
        )
        s = self.settings
        self.out.write(
            f"\nThe dashboard on this run's data (kept until the next demo): start the API\n"
            f"  ORCHESTRATOR_TOPIC_PREFIX={s.topic_prefix} "
            f"ORCHESTRATOR_REDIS_PREFIX={s.redis_prefix} \\\n"
            f"  ORCHESTRATOR_DATABASE_URL={s.database_url} orchestrator api\n"
            f"open http://127.0.0.1:8080/ui and paste this operator key: {_key_of(created)}\n"
        )


# Receipts and timers are in the timeline too; the table shows the customer and the messages.
_NOT_TOLD = {"message.sent", "message.delivered", "message.opened", "timer.fired"}


def _event_name(row: dict[str, Any]) -> str:
    return str(row["record"].get("event", {}).get("name", ""))


def _told(row: dict[str, Any]) -> bool:
    if row["kind"] == "inbound":
        return _event_name(row) not in _NOT_TOLD
    return row["kind"] in ("send", "suppress")


def _what(row: dict[str, Any]) -> str:
    """An inbound record's event (and reply text), a send's text, a suppression's reason."""
    record = row["record"]
    if row["kind"] == "inbound":
        event = record.get("event", {})
        text = (event.get("properties") or {}).get("text")
        return f"{event.get('name')}: {text!r}" if text else str(event.get("name"))
    if row["kind"] == "suppress":
        return f"suppressed: {record.get('reason')}"
    content = record.get("content") or {}
    text = content.get("subject") or content.get("title") or content.get("body") or ""
    return str(text).replace("\n", " ")


def _is_title(line: str, lines: list[str], at: int) -> bool:
    # A rich table's title is a centred line right above its top border.
    return at + 1 < len(lines) and lines[at + 1].startswith("┏") and line.startswith(" ")


def _key_of(created: str) -> str:
    # `keys create` prints a line about the key, then the secret alone on the last line.
    lines = created.strip().splitlines()
    return lines[-1] if len(lines) == 2 else "(no key was created: see above)"
