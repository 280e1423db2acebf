"""How `backtest --verify` explains a difference between the replay and the live system."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.backtest.ledger import LIVE_ONLY, REPLAY_ONLY, Difference, Ledger, Operated
from orchestrator.backtest.source import RetainedRange
from orchestrator.backtest.verify import cause_of
from orchestrator.backtest.window import Window
from orchestrator.contracts.deploys import (
    DeployRecord,
    OperatorAction,
    SourceRecord,
    VersionEntry,
)
from orchestrator.engine.catalog import DeployedJourney
from orchestrator.engine.sending import fallback_message_id
from orchestrator.infra.deploylog import JourneyRecords
from orchestrator.timefmt import format_instant
from tests.backtest_harness import JOURNEY, journey

WINDOW = Window(1_000.0, 5_000.0)
CATALOG = {JOURNEY: DeployedJourney(versions={}, current=1)}


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    store = Ledger(tmp_path / "verify.sqlite")
    yield store
    store.close()


def _diff(kind: str, at: float = 2_000.0, message: str = "m1", instance: str = "i1") -> Difference:
    return Difference(message, "c1", JOURNEY, "hello", instance, at, kind)


def _cause(
    ledger: Ledger,
    diff: Difference,
    operated: list[Operated] | None = None,
    records: JourneyRecords | None = None,
    retained: RetainedRange | None = None,
) -> str | None:
    ledger.commit()
    return cause_of(
        diff, catalog=CATALOG, ledger=ledger, operated=operated or [], records=records or {},
        retained=retained or RetainedRange(), window=WINDOW,
    )  # fmt: skip


def test_a_difference_without_a_known_cause_is_unexplained(ledger: Ledger) -> None:
    ledger.entered("c1", "i1")
    assert _cause(ledger, _diff(LIVE_ONLY)) is None
    assert _cause(ledger, _diff(REPLAY_ONLY)) is None


def test_operator_actions_inside_the_window_explain_later_messages(ledger: Ledger) -> None:
    ledger.entered("c1", "i1")
    redeploy = Operated(JOURNEY, 1_500.0, "deploy", 2)
    assert str(_cause(ledger, _diff(LIVE_ONLY), [redeploy])).startswith("redeploy mid-window")
    # Not before the action, nor for the version the replay runs, nor for another journey.
    assert _cause(ledger, _diff(LIVE_ONLY, at=1_400.0), [redeploy]) is None
    assert _cause(ledger, _diff(LIVE_ONLY), [Operated(JOURNEY, 1_500.0, "deploy", 1)]) is None
    assert _cause(ledger, _diff(LIVE_ONLY), [Operated("other", 1_500.0, "pause", 1)]) is None
    pause = Operated(JOURNEY, 1_500.0, "pause", 1)
    assert "pause of" in str(_cause(ledger, _diff(REPLAY_ONLY), [pause]))


def test_a_journey_deployed_after_a_replayed_message_explains_it(ledger: Ledger) -> None:
    entry = VersionEntry(
        source=SourceRecord.of(journey()), digest="d", deployed_at=format_instant(3_000.0),
        operator="test",
    )  # fmt: skip
    record = DeployRecord(
        journey=JOURNEY, versions={"1": entry}, current=1, status="active",
        updated_at=format_instant(3_000.0), operator="test", action=OperatorAction.DEPLOY,
    )  # fmt: skip
    records = {JOURNEY: record}
    assert "first deployed" in str(_cause(ledger, _diff(REPLAY_ONLY), records=records))
    assert _cause(ledger, _diff(REPLAY_ONLY, at=3_500.0), records=records) is None


def test_provider_failures_explain_the_failed_message_and_its_fallback(ledger: Ledger) -> None:
    ledger.entered("c1", "i1")
    ledger.failed("m1", "smtp_550", fallback_message_id("m1"))
    fallback = _diff(LIVE_ONLY, message=fallback_message_id("m1"))
    assert _cause(ledger, fallback) == "provider failure of m1 (smtp_550) triggered this fallback"
    assert "provider failed this message live (smtp_550)" in str(
        _cause(ledger, _diff(REPLAY_ONLY, message="m1"))
    )


def test_a_late_event_explains_what_follows_the_time_it_occurred(ledger: Ledger) -> None:
    ledger.entered("c1", "i1")
    ledger.late("c1", "e7", 1_800.0, 300.0)
    assert _cause(ledger, _diff(LIVE_ONLY)) == "late event e7: applied live 300s after it occurred"
    assert _cause(ledger, _diff(LIVE_ONLY, at=1_700.0)) is None


def test_instances_from_before_the_window_and_lost_retention_explain_live_messages(
    ledger: Ledger,
) -> None:
    assert "entered before the window" in str(_cause(ledger, _diff(LIVE_ONLY)))
    retained = RetainedRange(oldest={0: 1_500.0, 1: 2_500.0})
    assert "outside retention" in str(_cause(ledger, _diff(REPLAY_ONLY), retained=retained))
    assert _cause(ledger, _diff(REPLAY_ONLY, at=2_600.0), retained=retained) is None
