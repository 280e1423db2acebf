"""`backtest --verify`: a recorded stream run live through a real worker, stored by the audit
sink, then replayed: every difference is explained (a late event, a redeploy mid-window),
and one the live system could not have made is reported unexplained (exit code 1)."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
import time
from typing import Any

import pytest

from orchestrator import jsonwire
from orchestrator.backtest.verify import verify_window
from orchestrator.backtest.window import BacktestInputError, Selection, Window, rank_of
from orchestrator.contracts.interactions import SendInteraction
from orchestrator.control.operations import JourneyOperations
from orchestrator.engine.events import Event
from orchestrator.infra.settings import Settings
from orchestrator.timefmt import format_instant
from tests.audit_harness import fresh_database, produce, running_sink, wait_consumed
from tests.backtest_harness import JOURNEY, journey
from tests.runtime_harness import (
    TopicReader,
    isolated_settings,
    make_event,
    of_type,
    prepare,
    publish,
    reader,
    running_worker,
    wait_until,
)

WAIT = "2s"


def _start(customer: str, consent: bool = True) -> list[Event]:
    # Times in publishing order: the replay applies events in event time, the worker in
    # topic order, and both must see the consent before the start.
    now = time.time()
    profile = {"first_name": customer, "phone": "+1555"}
    events = [make_event(customer, "profile.updated", profile, at=now - 0.002)]
    if consent:
        opt_in = {"channel": "sms", "status": "opted_in"}
        events.append(make_event(customer, "consent.updated", opt_in, at=now - 0.001))
    return [*events, make_event(customer, "bt.start", at=now)]


async def _sent(log: TopicReader, customer: str, step: str) -> dict[str, Any]:
    def found(records: list[Any]) -> bool:
        return any(r["step"] == step for r in of_type(records, "send", customer))

    records = await log.until(found)
    return next(r for r in of_type(records, "send", customer) if r["step"] == step)


def _cli(settings: Settings, window: Window) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "backtest", "--verify", "--json", "--no-progress",
         "--from", format_instant(window.start), "--until", format_instant(window.end)],
        env={**settings.as_environment(), "PATH": "/usr/bin:/bin"},
        capture_output=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.stdout, done.stderr
    return done.returncode, jsonwire.loads(done.stdout)


async def test_verify_explains_every_difference_of_a_live_run(infrastructure: Settings) -> None:
    async with fresh_database(infrastructure) as url:
        settings = isolated_settings(infrastructure, database_url=url)
        await _live_run_then_verify(settings)


async def _live_run_then_verify(settings: Settings) -> None:
    topics = await prepare(settings)
    async with JourneyOperations(settings, "test") as ops:
        await ops.deploy([journey(WAIT)])
    # After the deploy, so the window holds only the redeploy below (in whole milliseconds,
    # as the command line takes it).
    window_start = math.floor(time.time() * 1000) / 1000 + 0.001
    async with (
        running_worker(settings) as worker,
        running_sink(settings),
        reader(settings, topics.interactions) as log,
    ):
        # Two plain customers (sms, and in_app for lack of consent), one who buys at once.
        plain = _start("v-sms") + _start("v-app", consent=False) + _start("v-buy")
        plain.append(make_event("v-buy", "bt.buy"))
        await publish(settings, plain)
        # A late event: the purchase reaches the worker after the nudge's timer fired, though
        # it happened before; the replay applies it at its time, so sends no nudge.
        [*_, late_start] = late = _start("v-late")
        await publish(settings, late)
        await _sent(log, "v-late", "nudge")
        await publish(settings, [make_event("v-late", "bt.buy", at=late_start.occurred_at + 0.5)])
        await log.until(lambda rs: bool(of_type(rs, "late", "v-late")))
        # Everyone above entered under v1 before the redeploy (a slow worker could otherwise
        # apply a start after it, and that customer would run v2 live).
        for customer in ("v-sms", "v-app", "v-buy"):
            await _sent(log, customer, "hello")
        await log.until(lambda rs: bool(of_type(rs, "exit", "v-buy")))
        # A redeploy mid-window: a customer who starts after it runs v2 live.
        async with JourneyOperations(settings, "test") as ops:
            await ops.deploy([journey(WAIT, hello="20% off today")])
        await wait_until(
            lambda: worker.follower.catalog[JOURNEY].current == 2, "the worker runs v2"
        )
        await publish(settings, _start("v-new"))
        for customer in ("v-sms", "v-app", "v-new"):
            await _sent(log, customer, "nudge")
        await log.until(lambda rs: bool(of_type(rs, "exit", "v-buy")))
        await wait_consumed(settings, settings.database_url, topics.interactions)
        window = Window(window_start, math.ceil(time.time()) + 1.0)

        result = await verify_window(settings, None, window, Selection())
        causes = {(d.customer_id, d.step): cause for d, cause in result.differences}
        assert result.unexplained == 0, causes
        assert set(causes) == {("v-late", "nudge"), ("v-new", "hello"), ("v-new", "nudge")}
        assert str(causes[("v-late", "nudge")]).startswith("late event")
        assert str(causes[("v-new", "hello")]).startswith("redeploy mid-window: deploy")
        # Live: 5 hellos, 4 nudges (v-buy bought first); the replay leaves v-late's nudge out,
        # and v-new's two messages are v1's in the replay.
        assert (result.live_sends, result.replayed_sends, result.matching) == (9, 8, 6)

        code, data = await asyncio.to_thread(_cli, settings, window)
        assert code == 0
        # Two customers only (the first by hash): their messages on both sides, no others.
        sends = {"v-sms": 2, "v-app": 2, "v-buy": 1, "v-late": 2, "v-new": 2}
        chosen = sorted(sends, key=lambda c: (rank_of(c), c))[:2]
        part = await verify_window(settings, None, window, Selection(customers=2))
        assert part.live_sends == sum(sends[c] for c in chosen)
        assert {d.customer_id for d, _ in part.differences} <= set(chosen)
        assert part.unexplained == 0
        with pytest.raises(BacktestInputError, match="'nope' is not deployed"):
            await verify_window(settings, "nope", window, Selection())
        assert (data["matching"], data["explained"], data["unexplained"]) == (6, 3, 0)

        # A send the engine would never make for these events: reported, exit code 1.
        hello = await _sent(log, "v-sms", "hello")
        forged = SendInteraction(
            **{**hello, "record_id": "forged-1", "message_id": "f" * 32, "step": "nudge"}
        )
        await produce(settings, topics.interactions, [("v-sms", forged.to_json())])
        await wait_consumed(settings, settings.database_url, topics.interactions)
        code, data = await asyncio.to_thread(_cli, settings, window)
        assert code == 1, data
        [unexplained] = [d for d in data["differences"] if d["cause"] is None]
        assert (unexplained["message_id"], unexplained["customer_id"]) == ("f" * 32, "v-sms")
        assert unexplained["difference"] == "live only"
