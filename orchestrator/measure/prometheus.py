"""Every journey figure as Prometheus metrics, for the API's `/metrics`.

A custom collector: `refresh()` (awaited by the scrape route) reads the projection tables at
most every `max_age_s` seconds into metric families, and `collect()` hands out the last read.
Counters are the projection's running counts (they only grow, like the records); waiting,
active, rates, times and experiment statistics are gauges. Labels are journey, version, step,
channel, outcome, reason, variant, period: never a customer. With the audit store's
personal fields (`refresh(..., personal)`, as the API passes them), NPS and CSAT per journey
and channel come too (`survey_metrics.py`): survey answers are personal, read through the
store's query that opens them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orchestrator.audit.personal import PersonalFields
from orchestrator.errors import OrchestratorError
from orchestrator.measure import figures
from orchestrator.measure.survey_answers import read_answers
from orchestrator.measure.survey_metrics import survey_metrics
from orchestrator.measure.surveys import survey_figures

__all__ = ["JourneyMetrics", "read_metrics"]

log = logging.getLogger(__name__)

Connection = psycopg.AsyncConnection[tuple[Any, ...]]

_JV = ["journey", "version"]
_READ_TIMEOUT_S = 3.0


async def read_metrics(
    conn: Connection, personal: PersonalFields | None = None, now: datetime | None = None
) -> list[Metric]:
    """Every figure of every journey and version, as metric families; with `personal`, the
    NPS and CSAT gauges too (the current ISO week is `now`'s, default the wall clock)."""
    entered = CounterMetricFamily(
        "orchestrator_journey_entered", "instances that entered", labels=_JV
    )
    active = GaugeMetricFamily("orchestrator_journey_active", "instances not ended yet", labels=_JV)
    exits = CounterMetricFamily(
        "orchestrator_journey_exits", "instances ended, by reason", labels=[*_JV, "reason"]
    )
    rate = GaugeMetricFamily(
        "orchestrator_journey_conversion_ratio", "goal exits per entry", labels=_JV
    )
    ttg = GaugeMetricFamily(
        "orchestrator_journey_time_to_goal_seconds", "time from entry to goal exit (median, p90)",
        labels=[*_JV, "quantile"],
    )  # fmt: skip
    cur = await conn.execute(
        "SELECT journey, version, exit_reason, count(*), count(*) FILTER (WHERE exited_at IS NULL),"
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM exited_at - entered_at)),"
        " percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM exited_at - entered_at))"
        " FROM measure_instances GROUP BY journey, version, exit_reason ORDER BY 1, 2, 3"
    )
    totals: dict[tuple[str, str], list[int]] = {}
    for journey, version, reason, n, waiting, median, p90 in await cur.fetchall():
        labels = [journey, str(version)]
        counts = totals.setdefault((journey, str(version)), [0, 0, 0])
        counts[0] += n
        counts[1] += waiting
        if reason is not None:
            exits.add_metric([*labels, reason], n)
        if reason == "goal":
            counts[2] = n
            ttg.add_metric([*labels, "0.5"], float(median))
            ttg.add_metric([*labels, "0.9"], float(p90))
    for (journey, version), (n, waiting, goals) in totals.items():
        entered.add_metric([journey, version], n)
        active.add_metric([journey, version], waiting)
        rate.add_metric([journey, version], goals / n if n else 0.0)
    return [
        entered,
        active,
        exits,
        rate,
        ttg,
        *await _steps(conn),
        *await _messages(conn),
        *await _experiments(conn),
        *await _surveys(conn, personal, now),
    ]


async def _surveys(
    conn: Connection, personal: PersonalFields | None, now: datetime | None
) -> list[Metric]:
    if personal is None:
        return []
    read = await read_answers(conn, personal)
    return survey_metrics(survey_figures(read.answers), now or datetime.now(UTC))


async def _steps(conn: Connection) -> list[Metric]:
    labels = [*_JV, "step"]
    entered = CounterMetricFamily(
        "orchestrator_journey_step_entered", "entries into the step", labels=labels
    )
    passed = CounterMetricFamily(
        "orchestrator_journey_step_passed", "entries that moved on", labels=labels
    )
    exited = CounterMetricFamily(
        "orchestrator_journey_step_exited", "entries that ended there", labels=labels
    )
    waiting = GaugeMetricFamily(
        "orchestrator_journey_step_waiting", "instances at the step now", labels=labels
    )
    edges = CounterMetricFamily(
        "orchestrator_journey_edge",
        "moves from one step to the next",
        labels=[*_JV, "from_step", "to_step"],
    )
    cur = await conn.execute(
        "SELECT journey, version, step, entered, passed, exited FROM measure_steps ORDER BY 1, 2, 3"
    )
    for journey, version, step, n_entered, n_passed, n_exited in await cur.fetchall():
        key = [journey, str(version), step]
        entered.add_metric(key, n_entered)
        passed.add_metric(key, n_passed)
        exited.add_metric(key, n_exited)
    cur = await conn.execute(
        "SELECT journey, version, current_step, count(*) FROM measure_instances"
        " WHERE exited_at IS NULL AND current_step IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    )
    for journey, version, step, n in await cur.fetchall():
        waiting.add_metric([journey, str(version), step], n)
    cur = await conn.execute(
        "SELECT journey, version, from_step, to_step, count FROM measure_edges ORDER BY 1, 2, 3, 4"
    )
    for journey, version, from_step, to_step, n in await cur.fetchall():
        edges.add_metric([journey, str(version), from_step, to_step], n)
    return [entered, passed, exited, waiting, edges]


async def _messages(conn: Connection) -> list[Metric]:
    messages = CounterMetricFamily(
        "orchestrator_journey_messages",
        "messages by outcome: sent, suppressed (with reason) or a receipt's",
        labels=[*_JV, "step", "channel", "outcome", "reason"],
    )
    cur = await conn.execute(
        "SELECT journey, version, step, channel, outcome, reason, count FROM measure_messages"
        " ORDER BY 1, 2, 3, 4, 5, 6"
    )
    for journey, version, step, channel, outcome, reason, n in await cur.fetchall():
        messages.add_metric([journey, str(version), step, channel, outcome, reason], n)
    return [messages]


async def _experiments(conn: Connection) -> list[Metric]:
    labels = ["journey", "step", "variant"]
    entries = GaugeMetricFamily(
        "orchestrator_experiment_entries", "instances in the arm", labels=labels
    )
    conversions = GaugeMetricFamily(
        "orchestrator_experiment_conversions", "goal exits of the arm", labels=labels
    )
    rate = GaugeMetricFamily(
        "orchestrator_experiment_conversion_ratio", "the arm's conversion rate", labels=labels
    )
    difference = GaugeMetricFamily(
        "orchestrator_experiment_difference", "rate minus the control's, with its 95% interval",
        labels=[*labels, "bound"],
    )  # fmt: skip
    p_value = GaugeMetricFamily(
        "orchestrator_experiment_p_value", "two-proportion z-test p-value", labels=labels
    )
    cur = await conn.execute("SELECT DISTINCT journey FROM measure_arms ORDER BY 1")
    for (journey,) in await cur.fetchall():
        for experiment in await figures.experiments(conn, journey):
            for result in experiment.arms:
                key = [journey, experiment.step, result.arm.variant]
                entries.add_metric(key, result.arm.entries)
                conversions.add_metric(key, result.arm.conversions)
                rate.add_metric(key, result.arm.rate or 0.0)
                if (c := result.comparison) is not None:
                    for bound, value in (
                        ("estimate", c.difference),
                        ("low", c.ci_low),
                        ("high", c.ci_high),
                    ):
                        difference.add_metric([*key, bound], value)
                    p_value.add_metric(key, c.p_value)
    return [entries, conversions, rate, difference, p_value]


class JourneyMetrics(Collector):
    """The journey figures for a Prometheus registry, read at most every `max_age_s`."""

    def __init__(self, max_age_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age_s = max_age_s
        self._clock = clock
        self._families: list[Metric] = []
        self._read_at: float | None = None

    async def refresh(
        self,
        connection: Callable[[], contextlib.AbstractAsyncContextManager[Connection]],
        personal: PersonalFields | None = None,
    ) -> None:
        """Read the tables again if the last read is older than `max_age_s`; on a database
        failure keep serving the last read (a scrape must not fail for the figures). With
        `personal`, survey answers are read too, for the NPS and CSAT gauges."""
        now = self._clock()
        if self._read_at is not None and now - self._read_at < self.max_age_s:
            return
        # Tried at most once per `max_age_s`, and briefly: a scrape must not hang either.
        self._read_at = now
        try:
            async with asyncio.timeout(_READ_TIMEOUT_S), connection() as conn:
                self._families = await read_metrics(conn, personal)
        except (OrchestratorError, psycopg.Error, TimeoutError) as exc:
            log.warning("journey metrics not refreshed, serving the last read: %s", exc)

    def collect(self) -> Iterator[Metric]:
        """The families of the last read."""
        yield from self._families
