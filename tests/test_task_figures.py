"""Task figures from a hand-made set of interactions, against values worked out by hand.

Hours from 0 throughout; `docs/measurement.md` ("Customer-perceived cycle time") states the
rules the expected values follow.
"""

from __future__ import annotations

import statistics

import pytest
from rich.console import Console

from orchestrator.measure.task_report import duration, render
from orchestrator.measure.tasks import (
    BUCKETS,
    GapPlace,
    TaskMeasure,
    distribution,
    quantile,
    task_spans,
)
from tests.task_histories import ANNA, BEN, CARL, DORA, EVE, ORDER_TASK, H, inbound, task


def test_spans_follow_match_within_and_process_rules() -> None:
    spans = task_spans(task(), CARL)
    assert [(s.start / H, s.end / H) for s in spans] == [(0, 20), (2, 50)]
    assert spans[0].process == (0, 5 * H)
    assert spans[1].process is None  # NW-5 never shipped
    [again] = task_spans(task(), DORA)
    assert (again.start / H, again.end / H, again.process) == (1000, 1010, (1000 * H, 1004 * H))
    assert task_spans(task(), EVE) == []


def test_figures_equal_the_hand_computed_values() -> None:
    measure = TaskMeasure([task()])
    for history in (ANNA, BEN, CARL, DORA, EVE):
        measure.add_customer(history)
    [figures] = measure.figures()
    assert (figures.customers, figures.completions) == (4, 5)
    # Customer times 10, 20, 40, 48, 72 h; process times 4, 5, 10, 24 h (NW-5 has none).
    assert figures.customer_time.count == 5
    assert figures.customer_time.median_seconds == 40 * H
    assert figures.customer_time.p90_seconds == 62.4 * H  # 48 + 0.6 * (72 - 48)
    assert figures.process_time.count == 4
    assert figures.process_time.median_seconds == 7.5 * H
    assert figures.process_time.p90_seconds == 19.8 * H  # 10 + 0.7 * (24 - 10)
    histogram = dict(figures.customer_time.histogram)
    assert {le: n for le, n in histogram.items() if n} == {
        43_200: 1,  # 10 h
        86_400: 1,  # 20 h
        172_800: 2,  # 40 h and 48 h (a bound is inclusive)
        345_600: 1,  # 72 h
    }
    # Gap: A 48, B 30, C 15 + 48, D 6 = 147 h; its pieces, biggest first.
    assert figures.gap_seconds == 147 * H
    assert [(place, seconds / H) for place, seconds in figures.gap] == [
        (GapPlace("us", None, None, None), 66),  # C 15 + 15 + 30, D 6
        (GapPlace("customer", "order-updates", "watch", "email"), 48),  # A
        (GapPlace("customer", "order-updates", "shipped", "email"), 20),  # B 10-30 h
        (GapPlace("us", "order-updates", "shipped", "email"), 6),  # B: reply to our SMS
        (GapPlace("customer", "support", "answer", "sms"), 4),  # B 36-40 h
        (GapPlace("us", None, None, "web"), 3),  # C: NW-5 ordered until NW-3 shipped
    ]
    shaped = figures.to_dict()
    assert shaped["gap"][1]["where"] == "waiting for the customer · order-updates/watch · email"
    assert shaped["gap"][1]["share"] == 48 / 147
    assert sum(item["seconds"] for item in shaped["gap"]) == shaped["gap_seconds"]


def test_conditions_pick_the_events_they_name() -> None:
    text = ORDER_TASK.replace(
        "ends: {event: order.delivered}",
        "ends: {event: order.delivered, when: 'event.properties.order_id == \"NW-9\"'}",
    ).replace("match: order_id\n", "")
    history = [
        inbound(0, "order.completed", 1),
        inbound(5, "order.delivered", 1),  # not NW-9: the span stays open
        inbound(9, "order.delivered", 9),
    ]
    [span] = task_spans(task(text), history)
    assert (span.start / H, span.end / H) == (0, 9)


def test_quantiles_match_the_standard_library() -> None:
    values = sorted([3.0, 1.0, 4.0, 1.5, 9.0, 2.6, 5.0])
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    assert quantile(values, 0.9) == pytest.approx(deciles[8], rel=1e-12)
    assert quantile(values, 0.5) == statistics.median(values)
    assert quantile([], 0.5) is None
    empty = distribution([])
    assert (empty.count, empty.median_seconds) == (0, None)
    assert len(empty.histogram) == len(BUCKETS) + 1
    assert distribution([10 * 86_400 * 30]).histogram[-1] == (None, 1)  # past the last bound


def test_the_report_shows_both_times_the_histogram_and_the_gap() -> None:
    measure = TaskMeasure([task()])
    for history in (ANNA, BEN, CARL, DORA, EVE):
        measure.add_customer(history)
    console = Console(record=True, width=110, color_system=None)
    render(console, {"tasks": [f.to_dict() for f in measure.figures()]})
    text = console.export_text()
    assert "4 customers completed it (5 times)" in text
    lines = {line.split("│")[1].strip(): line for line in text.splitlines() if "│" in line}
    assert "1d 16h" in lines["median"] and "7h 30m" in lines["median"]  # 40 h, 7.5 h
    assert "2d 14h" in lines["p90"] and "19h 48m" in lines["p90"]  # 62.4 h, 19.8 h
    assert "6d 3h" in lines["gap (total)"]  # 147 h
    assert "█" * 24 + " 2" in lines["2d"]  # two spans of 40 h and 48 h, the longest bar
    gap = [line for line in text.splitlines() if "order-updates/watch" in line]
    assert len(gap) == 1 and "the customer" in gap[0] and "2d" in gap[0] and "33%" in gap[0]
    empty = Console(record=True, width=80, color_system=None)
    render(empty, {"tasks": []})
    assert empty.export_text().startswith("No tasks")


def test_durations_read_as_people_say_them() -> None:
    assert [duration(s) for s in (None, 0, 42, 5400, 93_784, 86_400 * 3)] == [
        "-", "0s", "42s", "1h 30m", "1d 2h", "3d",
    ]  # fmt: skip
