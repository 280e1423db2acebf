"""NPS and CSAT as Prometheus gauges: per journey and channel, this ISO week and all time.

Scores are recomputed from the summed counts of `survey_figures` (each message's latest
answer), exactly as `GET /v1/measure/surveys` and the dashboard do; the `period` label is
`week` (the current ISO week, UTC) or `all`. Response counts come with them so a panel can
tell a score from two answers from one from two thousand, and the answers per group
(promoters, passives, detractors; satisfied) let a dashboard recompute a score over several
journeys or channels.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from orchestrator.measure.surveys import CsatRow, NpsRow, SurveyFigures, iso_week

__all__ = ["survey_metrics"]

_LABELS = ["journey", "channel", "period"]
_PERIODS = ("week", "all")


def _sums(
    rows: Iterable[NpsRow | CsatRow], week: str, fields: tuple[str, ...]
) -> dict[tuple[str, str, str], list[int]]:
    """Per (journey, channel, period): the sums of `fields` over the period's weeks."""
    sums: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0] * len(fields))
    for row in rows:
        for period in _PERIODS:
            if period == "week" and row.week != week:
                continue
            total = sums[(row.journey, row.channel, period)]
            for i, name in enumerate(fields):
                total[i] += getattr(row, name)
    return sums


def survey_metrics(figures: SurveyFigures, now: datetime) -> list[Metric]:
    """The NPS and CSAT gauges of `figures`; `now` picks the current ISO week."""
    week = iso_week(now)
    nps = GaugeMetricFamily(
        "orchestrator_survey_nps", "NPS, -100 to 100 (promoters minus detractors)", labels=_LABELS
    )
    csat = GaugeMetricFamily(
        "orchestrator_survey_csat", "CSAT, 0 to 100 (share answering 4 or 5)", labels=_LABELS
    )
    responses = GaugeMetricFamily(
        "orchestrator_survey_responses",
        "answers counted (each message's latest), by survey",
        labels=["survey", *_LABELS],
    )
    promoters = GaugeMetricFamily(
        "orchestrator_survey_nps_answers", "NPS answers by group", labels=[*_LABELS, "group"]
    )
    for key, (n, pro, passive, det) in sorted(
        _sums(figures.nps, week, ("responses", "promoters", "passives", "detractors")).items()
    ):
        nps.add_metric(list(key), 100.0 * (pro - det) / n)
        responses.add_metric(["nps", *key], n)
        for group, count in (("promoters", pro), ("passives", passive), ("detractors", det)):
            promoters.add_metric([*key, group], count)
    satisfied_answers = GaugeMetricFamily(
        "orchestrator_survey_csat_satisfied", "CSAT answers of 4 or 5", labels=_LABELS
    )
    for key, (n, satisfied) in sorted(
        _sums(figures.csat, week, ("responses", "satisfied")).items()
    ):
        csat.add_metric(list(key), 100.0 * satisfied / n)
        responses.add_metric(["csat", *key], n)
        satisfied_answers.add_metric(list(key), satisfied)
    return [nps, csat, responses, promoters, satisfied_answers]
