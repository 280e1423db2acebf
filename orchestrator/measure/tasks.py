"""Customer-perceived cycle time: task spans, their figures and where the gap is spent.

Pure: fed one customer's interactions at a time (`TaskMeasure.add_customer`), it keeps only
the spans' numbers, so a stream over the whole audit store needs little memory. The rules
are in docs/measurement.md ("Customer-perceived cycle time"); in short:

- a span opens at the first start event, closes at the first outcome after it (within
  `within`, else it is dropped and the next start event opens a new one); with `match`, each
  value of that property has its own spans;
- the process span is the first process start inside the customer's span and the first
  process end after it, also inside;
- the gap (customer time minus process time) is cut at every recorded interaction; each
  piece is "waiting for us" after the customer's last move, "waiting for the customer" after
  our last message, at the journey step and channel of the latest records.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from orchestrator.journey.tasks import CompiledTask, EventMatch

__all__ = [
    "BUCKETS",
    "NOT_CUSTOMER_MOVES",
    "CustomerSpans",
    "Distribution",
    "GapPlace",
    "Interaction",
    "Span",
    "TaskFigures",
    "TaskMeasure",
    "customer_spans",
    "distribution",
    "gap_places",
    "quantile",
    "task_spans",
]

Kind = Literal["inbound", "send", "step"]
Party = Literal["us", "customer"]

# Histogram upper bounds, seconds: 1m 5m 15m 1h 4h 12h 1d 2d 4d 7d 14d 30d, then the rest.
BUCKETS: tuple[float, ...] = (
    60, 300, 900, 3600, 14_400, 43_200, 86_400, 172_800, 345_600, 604_800, 1_209_600, 2_592_000,
)  # fmt: skip

NOT_CUSTOMER_MOVES = frozenset(
    {"message.sent", "message.delivered", "message.failed", "message.bounced", "timer.fired",
     "journey.archived"}
)  # fmt: skip
"""Inbound events that are not the customer's move: providers' receipts and the engine's own."""

TOP_PLACES = 10


@dataclass(frozen=True, slots=True)
class Interaction:
    """One recorded interaction of a customer: `at` in epoch seconds.

    inbound: `name`, `properties`, `channel` (the event's); send: `journey`, `step`,
    `channel`; step: `journey`, `step` (the customer reached that step).
    """

    at: float
    kind: Kind
    name: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)
    channel: str | None = None
    journey: str | None = None
    step: str | None = None


@dataclass(frozen=True, slots=True)
class Span:
    """One completed task: the customer's span and the process's inside it (if it ran)."""

    start: float
    end: float
    process: tuple[float, float] | None

    @property
    def customer_seconds(self) -> float:
        """The customer's time."""
        return self.end - self.start

    @property
    def process_seconds(self) -> float:
        """The process's time (0 when the process span did not happen inside)."""
        return self.process[1] - self.process[0] if self.process else 0.0


@dataclass(frozen=True, slots=True)
class GapPlace:
    """Where part of the gap was spent: whose move it was, at which journey step and channel."""

    party: Party
    journey: str | None
    step: str | None
    channel: str | None

    @property
    def where(self) -> str:
        """`waiting for us · order-updates/shipped · email` (`-` for what is unknown)."""
        who = "waiting for us" if self.party == "us" else "waiting for the customer"
        step = f"{self.journey}/{self.step}" if self.journey else "-"
        return f"{who} · {step} · {self.channel or '-'}"


@dataclass(frozen=True, slots=True)
class Distribution:
    """Count, median, p90 (None when empty) and histogram: (upper bound or None, count)."""

    count: int
    median_seconds: float | None
    p90_seconds: float | None
    histogram: tuple[tuple[float | None, int], ...]

    def to_dict(self) -> dict[str, Any]:
        """The API's shape."""
        return {
            "count": self.count,
            "median_seconds": self.median_seconds,
            "p90_seconds": self.p90_seconds,
            "histogram": [{"le_seconds": le, "count": n} for le, n in self.histogram],
        }


@dataclass(frozen=True, slots=True)
class TaskFigures:
    """One task's figures; `gap` holds the top places, biggest first, with their share."""

    task: str
    description: str
    customers: int
    completions: int
    customer_time: Distribution
    process_time: Distribution
    gap_seconds: float
    gap: tuple[tuple[GapPlace, float], ...]

    def to_dict(self) -> dict[str, Any]:
        """The API's shape (`GET /v1/measure/tasks`)."""
        return {
            "task": self.task,
            "description": self.description,
            "customers": self.customers,
            "completions": self.completions,
            "customer_time": self.customer_time.to_dict(),
            "process_time": self.process_time.to_dict(),
            "gap_seconds": self.gap_seconds,
            "gap": [
                {
                    "where": place.where,
                    "party": place.party,
                    "journey": place.journey,
                    "step": place.step,
                    "channel": place.channel,
                    "seconds": seconds,
                    "share": seconds / self.gap_seconds if self.gap_seconds else 0.0,
                }
                for place, seconds in self.gap
            ],
        }


def quantile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile of sorted `values`, interpolating between ranks (numpy's default)."""
    if not values:
        return None
    position = (len(values) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def distribution(values: Sequence[float]) -> Distribution:
    """Median, p90 and histogram of `values` (seconds)."""
    ordered = sorted(values)
    counts = [0] * (len(BUCKETS) + 1)
    for value in ordered:
        counts[bisect.bisect_left(BUCKETS, value)] += 1
    bounds: list[float | None] = [*BUCKETS, None]
    return Distribution(
        len(ordered),
        quantile(ordered, 0.5),
        quantile(ordered, 0.9),
        tuple(zip(bounds, counts, strict=True)),
    )


def _matches(spec: EventMatch, record: Interaction) -> bool:
    if record.kind != "inbound" or record.name != spec.name:
        return False
    if spec.when is None:
        return True
    scope = {"event": {"name": record.name, "channel": record.channel,
                       "properties": dict(record.properties)}}  # fmt: skip
    return spec.when.evaluate(scope)[0]


def task_spans(task: CompiledTask, history: Sequence[Interaction]) -> list[Span]:
    """The completed spans of `task` in one customer's time-ordered `history`."""
    groups: dict[str, list[Interaction]] = {}
    for record in history:
        if record.kind != "inbound":
            continue
        if task.match is None:
            groups.setdefault("", []).append(record)
        elif task.match in record.properties:
            groups.setdefault(str(record.properties[task.match]), []).append(record)
    spans: list[Span] = []
    for events in groups.values():
        opened: int | None = None
        for i, event in enumerate(events):
            if (
                opened is not None
                and task.within is not None
                and event.at - events[opened].at > task.within
            ):
                opened = None  # too old: dropped; this event may open the next span
            if opened is not None and _matches(task.ends, event):
                spans.append(
                    Span(events[opened].at, event.at, _process(task, events[opened : i + 1]))
                )
                opened = None
            elif opened is None and _matches(task.starts, event):
                opened = i
    return sorted(spans, key=lambda span: span.start)


def _process(task: CompiledTask, events: Sequence[Interaction]) -> tuple[float, float] | None:
    for i, event in enumerate(events):
        if _matches(task.process_starts, event):
            for later in events[i + 1 :]:
                if _matches(task.process_ends, later):
                    return event.at, later.at
            return None
    return None


def gap_places(span: Span, history: Sequence[Interaction]) -> dict[GapPlace, float]:
    """Seconds of the span outside its process span, by the place they were spent.

    `history` is the customer's time-ordered records; the pieces sum to the gap exactly.
    """
    inside = [r for r in history if span.start <= r.at <= span.end]
    places: dict[GapPlace, float] = {}
    party: Party = "us"
    move_channel: str | None = None
    send_channel: str | None = None
    journey: str | None = None
    step: str | None = None
    for i, record in enumerate(inside):
        if record.kind == "inbound" and record.name not in NOT_CUSTOMER_MOVES:
            party, move_channel = "us", record.channel
        elif record.kind == "send":
            party, send_channel = "customer", record.channel
        if record.kind in ("send", "step"):
            journey, step = record.journey, record.step
        until = inside[i + 1].at if i + 1 < len(inside) else span.end
        seconds = until - record.at - _overlap(record.at, until, span.process)
        if seconds > 0:
            place = GapPlace(party, journey, step, move_channel if party == "us" else send_channel)
            places[place] = places.get(place, 0.0) + seconds
    return places


def _overlap(start: float, end: float, process: tuple[float, float] | None) -> float:
    if process is None:
        return 0.0
    return max(0.0, min(end, process[1]) - max(start, process[0]))


@dataclass(frozen=True, slots=True)
class CustomerSpans:
    """What one customer contributes to one task's figures: each completed span with the
    places of its gap (in the order they were first met). Times and places only: no event
    property, so nothing personal (the task cache stores these, `measure/task_cache.py`)."""

    spans: tuple[tuple[Span, tuple[tuple[GapPlace, float], ...]], ...] = ()


def customer_spans(task: CompiledTask, ordered: Sequence[Interaction]) -> CustomerSpans:
    """One customer's contribution to `task`; `ordered` is their history sorted by time."""
    return CustomerSpans(
        tuple(
            (span, tuple(gap_places(span, ordered).items())) for span in task_spans(task, ordered)
        )
    )


@dataclass(slots=True)
class _Totals:
    customers: int = 0
    customer_seconds: list[float] = field(default_factory=list)
    process_seconds: list[float] = field(default_factory=list)
    gap: dict[GapPlace, float] = field(default_factory=dict)


class TaskMeasure:
    """Figures of several tasks, fed one customer's history (or their cached spans) at a time.

    Customers must come in the same order for the same figures to the last bit: the gap's
    seconds are float sums.
    """

    def __init__(self, tasks: Sequence[CompiledTask]) -> None:
        self.tasks = list(tasks)
        self._totals = [_Totals() for _ in self.tasks]

    def spans_of(self, history: Sequence[Interaction]) -> list[CustomerSpans]:
        """One customer's contribution to each task (task order); `history` is every record
        of theirs, in stored order."""
        ordered = sorted(history, key=lambda record: record.at)  # stable: ties keep their order
        return [customer_spans(task, ordered) for task in self.tasks]

    def add_customer(self, history: Sequence[Interaction]) -> None:
        """Count one customer's spans; `history` is every record of theirs, in stored order."""
        for index, found in enumerate(self.spans_of(history)):
            self.add_spans(index, found)

    def add_spans(self, index: int, found: CustomerSpans) -> None:
        """Count one customer's contribution to the task at `index`."""
        totals = self._totals[index]
        if found.spans:
            totals.customers += 1
        for span, places in found.spans:
            totals.customer_seconds.append(span.customer_seconds)
            if span.process is not None:
                totals.process_seconds.append(span.process_seconds)
            for place, seconds in places:
                totals.gap[place] = totals.gap.get(place, 0.0) + seconds

    def figures(self) -> list[TaskFigures]:
        """Each task's figures, in the order the tasks were given."""
        result = []
        for task, totals in zip(self.tasks, self._totals, strict=True):
            top = sorted(totals.gap.items(), key=lambda item: (-item[1], item[0].where))
            result.append(
                TaskFigures(
                    task.id,
                    task.description,
                    totals.customers,
                    len(totals.customer_seconds),
                    distribution(totals.customer_seconds),
                    distribution(totals.process_seconds),
                    sum(totals.gap.values()),
                    tuple(top[:TOP_PLACES]),
                )
            )
        return result
