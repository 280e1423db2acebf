"""A backtest end to end: spool the window, replay every chosen customer on both catalogs,
and return the side-by-side report (what the CLI prints and the API returns)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.backtest.catalogs import Catalogs, catalogs_for
from orchestrator.backtest.replay import START_STATE_NOTES, replay_customer
from orchestrator.backtest.source import RetainedRange, read_window
from orchestrator.backtest.spool import EventSpool
from orchestrator.backtest.tally import Changes, SideTally
from orchestrator.backtest.window import Selection, Window
from orchestrator.infra.deploylog import read_deploy_log
from orchestrator.infra.names import TopicNames
from orchestrator.infra.settings import Settings
from orchestrator.journey.source import JourneySource
from orchestrator.timefmt import format_instant

__all__ = ["BacktestReport", "PhaseProgress", "run_backtest", "spooled_window"]

PhaseProgress = Callable[[str, int, int], None]
"""Told (phase, done, total) as a backtest goes: phase `reading` then `replaying`."""

_HOUR = 3600


@dataclass(slots=True)
class BacktestReport:
    """The deployed and draft sides of one window, and what differs between them."""

    window: Window
    catalogs: Catalogs
    settings: Settings
    retained: RetainedRange
    events: int = 0
    events_before: int = 0
    customers: int = 0
    deployed: SideTally = field(default_factory=SideTally)
    draft: SideTally = field(default_factory=SideTally)
    changes: Changes = field(default_factory=Changes)

    def limits(self) -> dict[str, Any]:
        """Provider rate limits per hour against each side's busiest hour, and the caps."""
        providers: dict[str, Any] = {}
        deployed, draft = self.deployed.peaks(), self.draft.peaks()
        for provider in sorted(set(deployed) | set(draft)):
            rate = self.settings.connector_rate_limits.get(provider.split(":")[0])
            per_hour = None if rate is None else int(rate * _HOUR)
            providers[provider] = {
                "limit_per_hour": per_hour,
                "deployed_peak": _peak(deployed.get(provider)),
                "draft_peak": _peak(draft.get(provider)),
            }
        caps = {}
        for journey in self.catalogs.changed:
            old = self.catalogs.versions(journey)[0]
            deployed_plan = self.catalogs.deployed[journey].latest() if old is not None else None
            caps[journey] = {
                "deployed": _cap(deployed_plan.cap if deployed_plan else None),
                "draft": _cap(self.catalogs.draft[journey].latest().cap),
            }
        return {
            "providers": providers,
            "global_cap": {c: list(v) for c, v in sorted(self.settings.global_cap.items())},
            "frequency_caps": caps,
        }

    def to_json(self) -> dict[str, Any]:
        """The whole report as plain JSON (`--json`, the API)."""
        since = self.retained.retained_since()
        return {
            "window": self.window.to_json(),
            "retained_since": format_instant(since) if since is not None else None,
            "events": self.events,
            "events_before_window": self.events_before,
            "skipped_records": self.retained.skipped,
            "customers": self.customers,
            "journeys": {
                j: dict(zip(("deployed", "draft"), self.catalogs.versions(j), strict=True))
                for j in self.catalogs.changed
            },
            "deployed": self.deployed.to_json(),
            "draft": self.draft.to_json(),
            "changes": self.changes.to_json(),
            "limits": self.limits(),
            "start_state": list(START_STATE_NOTES),
        }


def _peak(peak: tuple[int, int] | None) -> dict[str, Any] | None:
    return None if peak is None else {"sends": peak[0], "hour": format_instant(peak[1])}


def _cap(cap: tuple[int, float] | None) -> dict[str, float] | None:
    return None if cap is None else {"max": cap[0], "period_seconds": cap[1]}


async def spooled_window(
    settings: Settings,
    window: Window,
    selection: Selection,
    spool: EventSpool,
    *,
    progress: PhaseProgress | None = None,
    history: bool = False,
) -> RetainedRange:
    """Spool the window's events (with `history`, all of each customer's earlier retained
    events) and choose the customers to replay."""
    retained = await read_window(
        settings.kafka_bootstrap,
        TopicNames(settings.topic_prefix).events,
        window,
        selection,
        spool,
        progress=None
        if progress is None
        else (lambda done, total: progress("reading", done, total)),
        history=history,
    )
    spool.choose(selection.customers, with_past=history)
    return retained


async def run_backtest(
    settings: Settings,
    sources: Sequence[JourneySource],
    window: Window,
    selection: Selection,
    *,
    progress: PhaseProgress | None = None,
    sample_size: int = 5,
) -> BacktestReport:
    """Replay `window` for the deployed catalog and the draft `sources`; the report."""
    topics = TopicNames(settings.topic_prefix)
    catalogs = catalogs_for(
        await read_deploy_log(settings.kafka_bootstrap, topics.journeys), sources
    )
    config = settings.engine_config()
    with EventSpool() as spool:
        retained = await spooled_window(
            settings, window, selection, spool, progress=progress, history=True
        )
        report = BacktestReport(window, catalogs, settings, retained, changes=Changes(sample_size))
        report.events, report.events_before = spool.window_events, spool.before_events
        total = spool.chosen
        for customer in spool.customers():
            deployed, draft = replay_customer(
                customer,
                (catalogs.deployed, catalogs.draft),
                config,
                window,
                history=catalogs.deployed,
            )
            report.deployed.add(deployed)
            report.draft.add(draft)
            report.changes.compare(customer.customer_id, deployed, draft)
            report.customers += 1
            if progress is not None:
                progress("replaying", report.customers, total)
        return report
