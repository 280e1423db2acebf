"""Before the journey workers stop: every event so far applied, and the questions answered.

On a busy machine the workers fall behind the fast-forwarded clock, so when the last virtual
day ends, events (demo customers' replies among them) may still wait on `events`, and
questions they send while catching up reach phones whose owners would answer. Stopping the
workers then would leave replies unapplied: the audit store and the timeline would miss them
while the feedback router (which reads `events` itself) routes them. So the demo waits, in
rounds, until the workers have committed every `events` record published so far, the SMS they
sent have reached the Twilio stand-in, and the answers to them have been posted; until a round
brings no new answer.
"""

from __future__ import annotations

import asyncio
import time
from typing import TextIO

from orchestrator.control.lag import group_lag
from orchestrator.dev.demo.providers import DemoProviders
from orchestrator.dev.demo.replies import Repliers
from orchestrator.dev.demo.report import Tally
from orchestrator.infra.names import TopicNames
from orchestrator.infra.settings import Settings

__all__ = ["let_workers_catch_up"]

_REPORT_EVERY = 2.0


async def let_workers_catch_up(
    settings: Settings,
    tally: Tally,
    providers: DemoProviders,
    repliers: Repliers,
    *,
    out: TextIO,
    stall: float,
) -> bool:
    """Wait in rounds (see the module); False when the workers stop progressing for `stall` s."""
    while True:
        answered = len(repliers.replies)
        await repliers.finish()
        if not await _applied(settings, repliers, out, stall):
            return False
        await _sms_reached_phones(tally, providers, stall)
        repliers.poll()
        if len(repliers.replies) == answered:
            return True


async def _applied(settings: Settings, repliers: Repliers, out: TextIO, stall: float) -> bool:
    """Until the workers' group has committed `events` up to its end as of now."""
    events = TopicNames(settings.topic_prefix).events
    now_at = (await group_lag(settings)).partitions
    target = {p.partition: p.end for p in now_at if p.topic == events}
    best = -1
    moved = next_report = time.monotonic()
    while True:
        report = await group_lag(settings)
        done = {p.partition: p.committed or 0 for p in report.partitions if p.topic == events}
        left = sum(max(0, end - done.get(partition, 0)) for partition, end in target.items())
        if left == 0:
            return True
        now = time.monotonic()
        if sum(done.values()) > best:
            best, moved = sum(done.values()), now
        elif now - moved > stall:
            return False
        if now >= next_report:
            next_report = now + _REPORT_EVERY
            out.write(f"the journey workers are catching up | events to apply: {left}\n")
            out.flush()
        repliers.poll()
        await asyncio.sleep(0.2)  # polling: committed offsets have no notification to await


async def _sms_reached_phones(tally: Tally, providers: DemoProviders, within: float) -> None:
    """Until every SMS the workers recorded has reached the Twilio stand-in (or `within` s)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if providers.delivered()["sms"] >= tally.totals()[1]["sms"]:
            return
        await asyncio.sleep(0.2)  # polling: the stand-in counts, it does not notify
