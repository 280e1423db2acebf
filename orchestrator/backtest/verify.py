"""Proof that the replay is the truth: replay the deployed versions over a window and compare
its sends, message by message, with what the live system sent (from the audit store).

Message ids are deterministic (customer, instance, step, steps run), so the same message has
the same id on both sides. The window selects events by broker time, while sends carry engine
time (`occurred_at` and timers): each customer is compared from their first window event's
time (or the window's start, if earlier) to the window's end, on both sides alike. Each
difference gets its cause when the audit store or the topic shows one, checked in this order:

1. an operator action on the journey inside the window, at or before the message (a
   redeploy, rollback, pause...): the replay keeps the version deployed at the window's
   start (`catalog_at`); a journey first deployed later is not running before that deploy
   (for a message only the replay sends);
2. a provider failure that made the engine fall back (the fallback message's id is derived
   from the failed one's, `engine/sending.fallback_message_id`);
3. a late event: the live worker applied an event after the customer's journeys had moved
   past its time (a `late` record); the replay applies every event at its own time;
4. an instance that entered before the window (a live message only): the replay does not
   reconstruct it;
5. a message older than the topic's retention: its events are gone.

Anything else is unexplained, and makes `orchestrator backtest --verify` exit 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from orchestrator.audit.db import connection
from orchestrator.audit.personal import PersonalFields
from orchestrator.audit.query import AuditFilter, stream_records
from orchestrator.backtest.catalogs import catalog_at
from orchestrator.backtest.comparison import PhaseProgress, spooled_window
from orchestrator.backtest.ledger import LIVE_ONLY, REPLAY_ONLY, Difference, Ledger, Operated
from orchestrator.backtest.replay import replay_customer
from orchestrator.backtest.source import RetainedRange
from orchestrator.backtest.spool import EventSpool
from orchestrator.backtest.window import BacktestInputError, Selection, Window
from orchestrator.engine.actions import Sent
from orchestrator.engine.catalog import Catalog
from orchestrator.engine.sending import fallback_message_id
from orchestrator.infra.deploylog import JourneyRecords, read_deploy_log
from orchestrator.infra.names import TopicNames
from orchestrator.infra.settings import Settings
from orchestrator.timefmt import format_instant, parse_instant

__all__ = ["Verification", "cause_of", "verify_window"]

_AUDIT_KINDS = ("send", "late", "provider", "operator", "enter")


@dataclass(slots=True)
class Verification:
    """Counts of both sides and every difference, each with its cause or None."""

    window: Window
    journey: str | None
    retained: RetainedRange
    live_sends: int = 0
    replayed_sends: int = 0
    matching: int = 0
    differences: list[tuple[Difference, str | None]] = field(default_factory=list)

    @property
    def unexplained(self) -> int:
        """Differences without a cause."""
        return sum(1 for _, cause in self.differences if cause is None)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (`--json`)."""
        since = self.retained.retained_since()
        return {
            "window": self.window.to_json(),
            "journey": self.journey,
            "retained_since": None if since is None else format_instant(since),
            "live_sends": self.live_sends,
            "replayed_sends": self.replayed_sends,
            "matching": self.matching,
            "explained": len(self.differences) - self.unexplained,
            "unexplained": self.unexplained,
            "differences": [
                {
                    "message_id": d.message_id,
                    "customer_id": d.customer_id,
                    "journey": d.journey,
                    "step": d.step,
                    "at": format_instant(d.at),
                    "difference": d.difference,
                    "cause": cause,
                }
                for d, cause in self.differences
            ],
        }


async def verify_window(
    settings: Settings,
    journey: str | None,
    window: Window,
    selection: Selection,
    progress: PhaseProgress | None = None,
) -> Verification:
    """Replay the versions deployed at the window's start; compare with the audit store."""
    records = await read_deploy_log(
        settings.kafka_bootstrap, TopicNames(settings.topic_prefix).journeys
    )
    if journey is not None and journey not in records:
        raise BacktestInputError(
            f"journey {journey!r} is not deployed: name one `orchestrator journeys list` shows, "
            "or leave it out to verify them all"
        )
    catalog = catalog_at(records, window.start)
    config = settings.engine_config()
    with EventSpool() as spool:
        retained = await spooled_window(settings, window, selection, spool, progress=progress)
        result = Verification(window, journey, retained)

        def since(customer_id: str) -> float | None:
            """Where the comparison starts for a customer (None: not compared)."""
            if selection.customers is None and not selection.admits(customer_id):
                return None
            first = spool.first_at(customer_id)
            if first is None:
                return None if selection.customers is not None else window.start
            return min(first, window.start)

        ledger = Ledger(spool.path.with_name("verify.sqlite"))
        try:
            for done, customer in enumerate(spool.customers(), start=1):
                [actions] = replay_customer(customer, (catalog,), config, window)
                start = since(customer.customer_id) or window.start
                ledger.replayed(
                    [
                        a for a in actions
                        if isinstance(a, Sent) and start <= a.at < window.end
                        and journey in (None, a.journey)
                    ]
                )  # fmt: skip
                if progress is not None:
                    progress("replaying", done, spool.chosen)
            earliest = min(window.start, spool.earliest() or window.start)
            operated = await _read_audit(
                settings, Window(earliest, window.end), journey, ledger, since
            )
            ledger.commit()
            result.live_sends, result.replayed_sends, result.matching = ledger.counts()
            for difference in ledger.differences():
                cause = cause_of(
                    difference, ledger=ledger, operated=operated, records=records, catalog=catalog,
                    retained=retained, window=window,
                )  # fmt: skip
                result.differences.append((difference, cause))
        finally:
            ledger.close()
        return result


async def _read_audit(
    settings: Settings,
    span: Window,
    journey: str | None,
    ledger: Ledger,
    since: Callable[[str], float | None],
) -> list[Operated]:
    """Store the live sends and explaining facts of each customer's part of `span` (engine
    time: from their first window event, or the window's start); return operator actions."""
    operated: list[Operated] = []
    flt = AuditFilter(
        since=datetime.fromtimestamp(span.start, UTC),
        until=datetime.fromtimestamp(span.end, UTC),
        kinds=_AUDIT_KINDS,
    )
    personal = PersonalFields.from_setting(settings.audit_personal_fields)
    async with connection(settings.database_url) as conn:
        async for stored in stream_records(conn, flt, personal):
            body, at = stored.record, stored.at.timestamp()
            if stored.kind == "operator":
                if "journey" in body and "action" in body:
                    operated.append(Operated(body["journey"], at, body["action"], body["version"]))
                continue
            customer = stored.customer_id
            start = None if customer is None else since(customer)
            if customer is None or start is None or at < start:
                continue
            if stored.kind == "send" and journey in (None, body["journey"]):
                ledger.live(body, at)
            elif stored.kind == "late":
                ledger.late(
                    customer, body["event_id"], parse_instant(body["occurred_at"]),
                    float(body["late_by_seconds"]),
                )  # fmt: skip
            elif stored.kind == "provider" and body.get("outcome") == "failed":
                error = str(body.get("error_code") or body.get("error") or "failed")
                ledger.failed(body["message_id"], error, fallback_message_id(body["message_id"]))
            elif stored.kind == "enter":
                ledger.entered(customer, body["instance_id"])
    return operated


def cause_of(
    diff: Difference,
    *,
    catalog: Catalog,
    ledger: Ledger,
    operated: list[Operated],
    records: JourneyRecords,
    retained: RetainedRange,
    window: Window,
) -> str | None:
    """Why a difference happened (see the module's list), or None: unexplained."""
    replayed = catalog.get(diff.journey)
    for action in operated:
        # Deploying the very version the replay runs changes nothing it did not replay.
        same = replayed is not None and (action.action, action.version) == (
            "deploy",
            replayed.current,
        )
        if action.journey == diff.journey and window.start < action.at <= diff.at and not same:
            return (
                f"redeploy mid-window: {action.action} of {action.journey} v{action.version} "
                f"at {format_instant(action.at)} (the replay keeps the window's first version)"
            )
    live_only = diff.difference == LIVE_ONLY
    record = records.get(diff.journey)
    if record is not None and diff.difference == REPLAY_ONLY:
        first = min(parse_instant(e.deployed_at) for e in record.versions.values())
        if diff.at < first:
            return f"{diff.journey} was first deployed at {format_instant(first)}, after this"
    fallback = ledger.fallback_for(diff.message_id) if live_only else None
    if fallback is not None:
        return f"provider failure of {fallback[0][:12]} ({fallback[1]}) triggered this fallback"
    error = ledger.failed_error(diff.message_id)
    if error is not None:
        return f"the provider failed this message live ({error}); the engine fell back"
    late = ledger.late_before(diff.customer_id, diff.at)
    if late is not None:
        return f"late event {late[0]}: applied live {late[1]:g}s after it occurred"
    if live_only and not ledger.entered_in_window(diff.customer_id, diff.instance_id):
        return "the instance entered before the window (running instances are not reconstructed)"
    since = retained.retained_since()
    if since is not None and diff.at < since:
        return f"outside retention: events before {format_instant(since)} are gone from the topic"
    return None
