"""`orchestrator demo`, small, end to end: what the journey workers produce for each delivered
channel reaches its provider (counted at the SMTP server and the Twilio and FCM stand-ins),
receipts come back through the API's signed webhooks, and the demo customers' SMS answers
(STOP, scores, words) travel the two-way path: replies, opt-outs, one confirmation each.
Beside them run the audit sink, into the run's own database, and the feedback router: every
interaction record is stored once and the chains verify, a replying customer's timeline holds
the reply, the report has figures, and each free-text reply lands on the team the rules say.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import psycopg
import pytest

from orchestrator.dev.demo.database import DemoDatabase, drop_idle_databases
from orchestrator.infra.settings import Settings

_COLUMNS = ("outbound", "provider", "sent", "delivered", "failed", "replies", "opt-outs", "confirm")


def _channel_rows(summary: str) -> dict[str, dict[str, int]]:
    """The summary's per-channel table, by channel (rows without a provider left out)."""
    lines = summary.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Per channel:")) + 2
    rows: dict[str, dict[str, int]] = {}
    for line in lines[start:]:
        fields = line.split()
        if not fields or not line.startswith("  "):
            break
        if len(fields) == 1 + len(_COLUMNS):
            rows[fields[0]] = dict(zip(_COLUMNS, map(int, fields[1:]), strict=True))
    return rows


def _cells(line: str) -> list[str]:
    """The cells of one row of a rich table."""
    return [cell.strip() for cell in line.strip().strip("│").split("│")]


def _feedback_rows(summary: str) -> dict[str, tuple[int, int]]:
    """The feedback table's (replies routed, expected) by team."""
    rows = {}
    for line in summary.splitlines():
        if ".feedback." in line and line.startswith("│"):
            team, _, routed, expected, _ = _cells(line)
            rows[team] = (int(routed), int(expected))
    return rows


@pytest.mark.timeout(400)
def test_a_small_demo_delivers_every_message_and_hears_the_replies(
    infrastructure: Settings,
) -> None:
    demo = subprocess.run(
        [sys.executable, "-m", "orchestrator", "demo", "--customers", "300", "--days", "10"],
        env={**os.environ, **infrastructure.as_environment()},
        capture_output=True,
        text=True,
        timeout=380,
        check=False,
    )
    summary = demo.stdout + demo.stderr
    assert demo.returncode == 0, summary
    assert "PROBLEM" not in summary, summary
    rows = _channel_rows(summary)
    assert {"email", "sms", "push", "in_app"} <= set(rows), summary
    for channel, row in rows.items():
        assert row["outbound"] > 0, summary
        assert row["provider"] == row["outbound"] == row["sent"], f"{channel}\n{summary}"
    assert rows["email"]["failed"] == rows["push"]["failed"] == rows["in_app"]["failed"] == 0
    # Every SMS gets a receipt from Twilio's signed status callbacks: delivered, or failed for
    # the demo's unreachable phones.
    callbacks = re.search(r"made status callbacks: (.*)\.", summary)
    assert callbacks is not None, summary
    made = {status: int(n) for n, status in re.findall(r"(\d+) (\w+)", callbacks.group(1))}
    sms = rows["sms"]
    assert sms["delivered"] == made["delivered"], summary
    assert sms["failed"] == made.get("undelivered", 0), summary
    assert sms["delivered"] + sms["failed"] == sms["provider"], summary
    answered = re.search(r"answered the feedback SMS: (.*?);", summary)
    assert answered is not None, summary
    kinds = {kind: int(n) for n, kind in re.findall(r"(\d+) (\w+)", answered.group(1))}
    assert kinds.get("stop", 0) > 0 and kinds.get("score", 0) + kinds.get("words", 0) > 0, summary
    assert sms["replies"] == kinds.get("score", 0) + kinds.get("words", 0), summary
    assert sms["opt-outs"] == sms["confirm"] == kinds["stop"], summary

    # The audit store holds every record of the interactions topic, once, and verifies.
    store = re.search(
        r"│\s*(\d+)\s*│\s*(\d+)\s*│\s*verified (\d+) records in (\d+) chains: intact", summary
    )
    assert store is not None, summary
    on_topic, stored, verified, chains = map(int, store.groups())
    assert on_topic == stored == verified > 0, summary
    assert chains >= 300, summary  # a chain per customer at least
    # A replying customer's timeline: their reply (inbound) and our SMS (outbound) both ways.
    timeline = summary[summary.index("Timeline of") : summary.index("$ orchestrator report")]
    assert "message.replied" in timeline and "delivery-feedback / thanks" in timeline, summary
    assert re.search(r"│ out\s+│ sms", timeline) and re.search(r"│ in\s+│", timeline)
    # The report read the same store: every journey's figures, and the split's verdict.
    report = summary[summary.index("$ orchestrator report") :]
    assert re.search(r"│ welcome-series\s+│ 1\s+│\s+300 │", report), summary
    assert "Experiment at subject_test" in report, summary
    # Each free-text reply (words, or a score with words) is routed once, to the rules' team.
    feedback = _feedback_rows(summary)
    free_text = re.search(r"(\d+) free-text replies .* the router routed (\d+) of them", summary)
    assert free_text is not None, summary
    sent, routed = map(int, free_text.groups())
    assert kinds["words"] <= sent <= kinds["words"] + kinds["score"], summary
    assert routed == sent == sum(r for r, _ in feedback.values()), summary
    assert all(routed == expected for routed, expected in feedback.values()), summary
    assert sum(r for team, (r, _) in feedback.items() if team != "triage") > 0, summary
    assert re.search(r"paste this operator key: ok_\S+", summary), summary


async def test_a_demo_database_in_use_is_kept_and_dropped_once_let_go(
    infrastructure: Settings,
) -> None:
    # A name no real run has (their suffix is the current unix time).
    running = DemoDatabase(infrastructure.database_url, f"demo{int(time.time())}999")
    await running.create()
    try:
        dropped, kept = await drop_idle_databases(infrastructure.database_url)
        assert running.name in kept and running.name not in dropped
    finally:
        await running.close()
    dropped, kept = await drop_idle_databases(infrastructure.database_url)
    assert running.name in dropped
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        await psycopg.AsyncConnection.connect(running.url)
