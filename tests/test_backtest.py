"""Backtests against the real broker: a draft's report, windows, start states and samples."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from orchestrator.backtest.comparison import BacktestReport, run_backtest
from orchestrator.backtest.window import BacktestInputError, Selection, Window, rank_of, window_of
from orchestrator.control.operations import JourneyOperations
from orchestrator.engine.events import Event
from orchestrator.infra.settings import Settings
from orchestrator.timefmt import parse_instant
from tests.backtest_harness import (
    JOURNEY,
    draft_source,
    expected_sends,
    journey,
    publish_at,
    write_draft,
)
from tests.runtime_harness import isolated_settings, make_event, prepare

DAY = 86400.0


def _customer_events(customer: str, start: float, *, consent: bool, buys: bool) -> list[Event]:
    """A profile (and sms consent), the trigger at `start`, a purchase half a day in if `buys`."""
    events = [
        make_event(customer, "profile.updated", {"first_name": customer.upper(),
                                                  "phone": "+15550001"}, at=start - 60),
        make_event(customer, "bt.start", at=start),
    ]  # fmt: skip
    if consent:
        opt_in = {"channel": "sms", "status": "opted_in"}
        events.insert(1, make_event(customer, "consent.updated", opt_in, at=start - 30))
    if buys:
        events.append(make_event(customer, "bt.buy", at=start + DAY / 2))
    return events


def _sends(report_side: dict[str, object]) -> Counter[tuple[str, str, str]]:
    rows = report_side["sends"]
    assert isinstance(rows, list)
    return Counter({(r["journey"], r["step"], r["channel"]): r["count"] for r in rows})


async def _deployed(infrastructure: Settings) -> Settings:
    settings = isolated_settings(infrastructure)
    await prepare(settings)
    async with JourneyOperations(settings, "test") as ops:
        await ops.deploy([journey()])
    return settings


async def test_a_draft_that_adds_a_step_adds_exactly_the_sends_the_simulator_predicts(
    infrastructure: Settings,
) -> None:
    settings = await _deployed(infrastructure)
    now = time.time()
    start = now - 5 * DAY
    events: list[Event] = []
    for n in range(8):
        events += _customer_events(f"d{n}", start + n * 3600, consent=n % 2 == 0, buys=n % 3 == 0)
    await publish_at(settings, events, int(now * 1000) - 60_000)
    window = Window(now - 3600, now + 60)

    report = await run_backtest(settings, [draft_source()], window, Selection())
    data = report.to_json()

    deployed = expected_sends(journey(), 1, events, window.end)
    draft = expected_sends(draft_source(), 2, events, window.end)
    assert _sends(data["deployed"]) == deployed
    assert _sends(data["draft"]) == draft
    # The extra step is the only change: customers who bought before the wait ended get none.
    extra = draft - deployed
    assert set(extra) == {(JOURNEY, "extra", "in_app")}
    assert extra[(JOURNEY, "extra", "in_app")] == 5  # 8 customers, 3 bought (d0, d3, d6)
    assert deployed - draft == Counter()
    changes = data["changes"]
    assert changes["removed"] == []
    assert changes["added"] == [
        {"journey": JOURNEY, "step": "extra", "channel": "in_app", "count": 5}
    ]
    assert changes["customers"] == 5
    for key in ("entries", "suppressions", "exits", "goals"):
        assert data["deployed"][key] == data["draft"][key], key
    assert data["journeys"] == {JOURNEY: {"deployed": 1, "draft": 2}}
    sample = changes["sample"][0]
    [added] = [m for m in sample["draft"] if m["step"] == "extra"]
    assert added["content"] == {"title": "Last day", "body": "10% off ends tonight"}
    assert [m for m in sample["deployed"] if m["step"] == "extra"] == []


async def test_the_window_selects_events_by_broker_time_and_earlier_ones_shape_start_states(
    infrastructure: Settings,
) -> None:
    settings = await _deployed(infrastructure)
    now = time.time()
    hour = 3600_000
    base = int(now * 1000)
    inside = [f"w{n}" for n in range(12)]
    # Published 3 h ago: profiles, and sms consent for even customers only.
    before = [
        e
        for n, c in enumerate(inside)
        for e in _customer_events(c, now - 4 * DAY, consent=n % 2 == 0, buys=False)
        if e.name != "bt.start"
    ]
    await publish_at(settings, before, base - 3 * hour)
    await publish_at(settings, [make_event(c, "bt.start", at=now - 3 * DAY) for c in inside],
                     base - 2 * hour)  # fmt: skip
    later = [make_event(f"late{n}", "bt.start", at=now - DAY) for n in range(5)]
    await publish_at(settings, later, base - hour)

    window = Window(now - 2.5 * 3600, now - 1.5 * 3600)
    report = await run_backtest(settings, [draft_source()], window, Selection(), sample_size=20)
    data = report.to_json()
    assert (data["events"], data["events_before_window"], data["customers"]) == (12, 18, 12)
    # Consent and profile came from before the window: sms for the 6 who opted in, with
    # their name; the others fall back to in_app (no_consent).
    assert _sends(data["deployed"])[(JOURNEY, "hello", "sms")] == 6
    assert _sends(data["deployed"])[(JOURNEY, "hello", "in_app")] == 6
    suppressed = {(r["reason"], r["count"]) for r in data["deployed"]["suppressions"]}
    assert suppressed == {("no_consent", 6)}
    hello = [m for s in data["changes"]["sample"] for m in s["deployed"] if m["step"] == "hello"]
    assert {m["content"]["body"] for m in hello if m["channel"] == "sms"} == {
        f"Hi {c.upper()}, 10% off today" for c in inside[::2]
    }

    first = await run_backtest(settings, [draft_source()], window, Selection(customers=4))
    assert first.customers == 4
    chosen = {s["customer_id"] for s in first.changes.sample}
    assert chosen == set(sorted(inside, key=lambda c: (rank_of(c), c))[:4])

    sampled = await run_backtest(settings, [draft_source()], window, Selection(sample=0.5))
    assert sampled.customers == sum(1 for c in inside if rank_of(c) < 0.5 * 2**32)
    assert _replayed(sampled) <= set(inside)


async def test_journeys_entered_before_the_window_act_in_it(infrastructure: Settings) -> None:
    settings = isolated_settings(infrastructure)
    await prepare(settings)
    async with JourneyOperations(settings, "test") as ops:
        await ops.deploy([journey(wait="1h")])
    now = time.time()
    # Entered 3 h ago (their hello went then); their hour's wait ends inside the window.
    past = [f"past{n}" for n in range(3)]
    started = now - 3 * 3600
    events = [e for c in past for e in _customer_events(c, started, consent=True, buys=False)]
    await publish_at(settings, events, int(started * 1000))
    window = Window(now - 2.5 * 3600, now - 1.5 * 3600)

    report = await run_backtest(settings, [draft_source(wait="1h")], window, Selection())
    data = report.to_json()
    assert (data["events"], data["events_before_window"], data["customers"]) == (0, 9, 3)
    # Their past replayed: the running instances' nudges fall in the window, the hellos
    # before it. They run the deployed version: the draft's new step is for new entries.
    assert _sends(data["deployed"]) == Counter({(JOURNEY, "nudge", "in_app"): 3})
    assert _sends(data["draft"]) == _sends(data["deployed"])


def _replayed(report: BacktestReport) -> set[str]:
    return {s["customer_id"] for s in report.changes.sample}


def test_window_and_sample_arguments_are_checked() -> None:
    now = 1_800_000_000.0
    assert window_of("7d", None, None, now) == Window(now - 7 * DAY, now)
    day_one, day_two = parse_instant("2027-01-01T00:00:00Z"), parse_instant("2027-01-02T00:00:00Z")
    assert window_of(None, "2027-01-01T00:00:00Z", "2027-01-02T00:00:00Z", now) == Window(
        day_one, day_two
    )
    assert window_of(None, "2027-01-01T00:00:00Z", None, day_two) == Window(day_one, day_two)
    for since, start, until, message in (
        ("7d", "2027-01-01T00:00:00Z", None, "either --since or --from"),
        (None, None, None, "say which events"),
        (None, "2027-01-02T00:00:00Z", "2027-01-01T00:00:00Z", "before it starts"),
        ("soon", None, None, "bad duration"),
    ):
        with pytest.raises(BacktestInputError, match=message):
            window_of(since, start, until, now)
    for customers, sample in ((1, 0.5), (0, None), (None, 1.5)):
        with pytest.raises(BacktestInputError):
            Selection(customers, sample)


async def test_deploy_dry_run_prints_the_report_and_deploys_nothing(
    infrastructure: Settings, tmp_path: Path
) -> None:
    settings = await _deployed(infrastructure)
    now = time.time()
    events = _customer_events("dry", now - 3 * DAY, consent=True, buys=False)
    await publish_at(settings, events, int(now * 1000) - 60_000)
    draft = write_draft(draft_source(), tmp_path)
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "orchestrator", "deploy", "--dry-run", str(draft)],
        env={**settings.as_environment(), "ORCHESTRATOR_BACKTEST_WINDOW": "1h", "COLUMNS": "120"},
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"{JOURNEY}: deployed v1, draft v2" in done.stdout
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in done.stdout.splitlines()]
    # The sends table and the changes table: no `extra` deployed, one in the draft.
    assert rows.count([JOURNEY, "extra", "in_app", "0", "1"]) == 2, done.stdout
    async with JourneyOperations(settings, "test") as ops:
        records = await ops.records()
    assert records[JOURNEY]["current"] == 1 and len(records[JOURNEY]["versions"]) == 1
