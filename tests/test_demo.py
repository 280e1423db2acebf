"""`orchestrator demo`, small, end to end: what the journey workers produce for each delivered
channel reaches its provider (counted at the SMTP server and the Twilio and FCM stand-ins),
receipts come back through the API's signed webhooks, and the demo customers' SMS answers
(STOP, scores, words) travel the two-way path: replies, opt-outs, one confirmation each."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

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
