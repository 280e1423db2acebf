"""Reading the journey figures from the projection tables, in the API's shapes.

The readers take an open connection and return JSON-ready data (`experiments` returns the
evaluated `Experiment`s; `experiments_json` shapes them); `version=None` adds up every
version of the journey. See docs/measurement.md for what each figure means.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import psycopg
from typing_extensions import TypedDict  # pydantic needs it for response models on 3.11

from orchestrator.measure.experiments import Arm, ArmResult, Experiment, evaluate
from orchestrator.measure.journeys import RECEIPT_OUTCOMES

__all__ = [
    "Experiments",
    "Funnel",
    "JourneyFigures",
    "JourneySummary",
    "experiments",
    "experiments_json",
    "funnel",
    "in_journey_order",
    "journey_figures",
    "journeys",
]

Connection = psycopg.AsyncConnection[tuple[Any, ...]]

# Every query filters on `version = coalesce(%(version)s, version)`: one version, or all of
# them when the parameter is NULL.


class JourneySummary(TypedDict):
    """One journey's headline figures (`GET /v1/measure/journeys`)."""

    journey: str
    versions: list[int]
    entered: int
    active: int
    goals: int
    conversion_rate: float | None


class TimeToGoal(TypedDict):
    """Seconds from entering to the goal exit, over the instances that reached the goal."""

    count: int
    median_seconds: float | None
    p90_seconds: float | None


class StepFigures(TypedDict):
    """One step: entries (loops count each time), waiting there now, moved on, ended there."""

    step: str
    entered: int
    waiting: int
    passed: int
    exited: int


Edge = TypedDict("Edge", {"from": str, "to": str, "count": int})


class MessageFigure(TypedDict):
    """Messages of one step and channel with one outcome (and reason, for suppressions)."""

    step: str
    channel: str
    outcome: str
    reason: str
    count: int


class JourneyFigures(TypedDict):
    """Everything about one journey (`GET /v1/measure/journeys/{journey}`)."""

    journey: str
    version: int | None
    entered: int
    active: int
    goals: int
    conversion_rate: float | None
    time_to_goal: TimeToGoal
    exits: dict[str, int]
    steps: list[StepFigures]
    edges: list[Edge]
    sends: dict[str, int]
    suppressions: dict[str, int]
    receipts: dict[str, int]
    messages: list[MessageFigure]


def _rate(goals: int, entered: int) -> float | None:
    return goals / entered if entered else None


async def journeys(conn: Connection) -> list[JourneySummary]:
    """Every journey with an instance, by name."""
    cur = await conn.execute(
        "SELECT journey, array_agg(DISTINCT version ORDER BY version), count(*),"
        " count(*) FILTER (WHERE exited_at IS NULL), count(*) FILTER (WHERE exit_reason = 'goal')"
        " FROM measure_instances GROUP BY journey ORDER BY journey"
    )
    return [
        JourneySummary(
            journey=row[0],
            versions=list(row[1]),
            entered=row[2],
            active=row[3],
            goals=row[4],
            conversion_rate=_rate(row[4], row[2]),
        )
        for row in await cur.fetchall()
    ]


async def journey_figures(
    conn: Connection, journey: str, version: int | None = None
) -> JourneyFigures:
    """One journey's figures (of one version, or all); zeros for a journey without records."""
    params = {"journey": journey, "version": version}
    cur = await conn.execute(
        "SELECT exit_reason, count(*), count(*) FILTER (WHERE exited_at IS NULL)"
        " FROM measure_instances WHERE journey = %(journey)s"
        " AND version = coalesce(%(version)s, version) GROUP BY exit_reason",
        params,
    )
    by_reason = {row[0]: (row[1], row[2]) for row in await cur.fetchall()}
    entered = sum(n for n, _ in by_reason.values())
    active = sum(waiting for _, waiting in by_reason.values())
    exits = {reason: by_reason[reason][0] for reason in sorted(r for r in by_reason if r)}
    cur = await conn.execute(
        "SELECT count(*),"
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM exited_at - entered_at)),"
        " percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM exited_at - entered_at))"
        " FROM measure_instances WHERE journey = %(journey)s"
        " AND version = coalesce(%(version)s, version) AND exit_reason = 'goal'",
        params,
    )
    row = await cur.fetchone()
    assert row is not None  # an aggregate always returns a row
    time_to_goal = TimeToGoal(
        count=row[0],
        median_seconds=float(row[1]) if row[1] is not None else None,
        p90_seconds=float(row[2]) if row[2] is not None else None,
    )
    edges = await _edges(conn, params)
    steps = in_journey_order(await _steps(conn, params), edges)
    messages = await _messages(conn, params)
    goals = exits.get("goal", 0)
    return JourneyFigures(
        journey=journey,
        version=version,
        entered=entered,
        active=active,
        goals=goals,
        conversion_rate=_rate(goals, entered),
        time_to_goal=time_to_goal,
        exits=exits,
        steps=steps,
        edges=edges,
        sends=_total(messages, "sent", "channel"),
        suppressions=_total(messages, "suppressed", "reason"),
        receipts={
            o: sum(m["count"] for m in messages if m["outcome"] == o) for o in RECEIPT_OUTCOMES
        },
        messages=messages,
    )


async def _steps(conn: Connection, params: dict[str, Any]) -> list[StepFigures]:
    cur = await conn.execute(
        "SELECT step, sum(entered)::bigint, sum(passed)::bigint, sum(exited)::bigint"
        " FROM measure_steps WHERE journey = %(journey)s"
        " AND version = coalesce(%(version)s, version) GROUP BY step"
        " ORDER BY step",
        params,
    )
    counted = {row[0]: row[1:] for row in await cur.fetchall()}
    cur = await conn.execute(
        "SELECT current_step, count(*) FROM measure_instances WHERE journey = %(journey)s"
        " AND version = coalesce(%(version)s, version) AND exited_at IS NULL"
        " AND current_step IS NOT NULL GROUP BY current_step",
        params,
    )
    waiting = {row[0]: row[1] for row in await cur.fetchall()}
    return [
        StepFigures(
            step=step, entered=entered, waiting=waiting.get(step, 0), passed=passed, exited=exited
        )
        for step, (entered, passed, exited) in counted.items()
    ]


async def _edges(conn: Connection, params: dict[str, Any]) -> list[Edge]:
    cur = await conn.execute(
        "SELECT from_step, to_step, sum(count)::bigint FROM measure_edges"
        " WHERE journey = %(journey)s AND version = coalesce(%(version)s, version)"
        " GROUP BY from_step, to_step ORDER BY from_step, to_step",
        params,
    )
    return [{"from": row[0], "to": row[1], "count": row[2]} for row in await cur.fetchall()]


async def _messages(conn: Connection, params: dict[str, Any]) -> list[MessageFigure]:
    cur = await conn.execute(
        "SELECT step, channel, outcome, reason, sum(count)::bigint FROM measure_messages"
        " WHERE journey = %(journey)s AND version = coalesce(%(version)s, version)"
        " GROUP BY step, channel, outcome, reason ORDER BY step, channel, outcome, reason",
        params,
    )
    return [
        MessageFigure(step=row[0], channel=row[1], outcome=row[2], reason=row[3], count=row[4])
        for row in await cur.fetchall()
    ]


def in_journey_order(steps: list[StepFigures], edges: list[Edge]) -> list[StepFigures]:
    """`steps` by their distance from where instances start (the steps no other step leads
    to, else the most entered), then most entered first: the journey's order as it ran."""
    following: dict[str, list[str]] = {}
    for edge in edges:
        if edge["from"] != edge["to"]:
            following.setdefault(edge["from"], []).append(edge["to"])
    led_to = {to for targets in following.values() for to in targets}
    by_entries = sorted(steps, key=lambda s: (-s["entered"], s["step"]))
    frontier = [s["step"] for s in by_entries if s["step"] not in led_to] or [
        s["step"] for s in by_entries[:1]
    ]
    depth: dict[str, int] = dict.fromkeys(frontier, 0)
    queue = deque(frontier)
    while queue:
        current = queue.popleft()
        for step in following.get(current, []):
            if step not in depth:
                depth[step] = depth[current] + 1
                queue.append(step)
    unreached = len(steps)
    return sorted(by_entries, key=lambda s: depth.get(s["step"], unreached))


def _total(messages: list[MessageFigure], outcome: str, by: str) -> dict[str, int]:
    totals: dict[str, int] = {}
    for message in messages:
        if message["outcome"] == outcome:
            key = message["channel"] if by == "channel" else message["reason"]
            totals[key] = totals.get(key, 0) + message["count"]
    return dict(sorted(totals.items()))


class FunnelStep(TypedDict):
    """One step's entries and their share of the journey's entries."""

    step: str
    entered: int
    share: float | None


class Funnel(TypedDict):
    """`GET /v1/measure/journeys/{journey}/funnel`."""

    journey: str
    version: int | None
    entered: int
    steps: list[FunnelStep]


class ArmJson(TypedDict):
    """One arm of a split and its comparison to the control (null for the control)."""

    variant: str
    holdout: bool
    entries: int
    conversions: int
    rate: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    verdict: str | None


class ExperimentJson(TypedDict):
    """One split: its control, its arms, the verdict in words."""

    step: str
    control: str
    arms: list[ArmJson]
    verdict: str


class Experiments(TypedDict):
    """`GET /v1/measure/journeys/{journey}/experiments`."""

    journey: str
    version: int | None
    experiments: list[ExperimentJson]


async def funnel(conn: Connection, journey: str, version: int | None = None) -> Funnel:
    """Each step's entries and their share of the journey's entries, in journey order."""
    figures = await journey_figures(conn, journey, version)
    entered = figures["entered"]
    return Funnel(
        journey=journey,
        version=version,
        entered=entered,
        steps=[
            FunnelStep(step=s["step"], entered=s["entered"], share=_rate(s["entered"], entered))
            for s in figures["steps"]
        ],
    )


async def experiments(
    conn: Connection, journey: str, version: int | None = None
) -> list[Experiment]:
    """Every split of the journey with its arms: entries and goal conversions per arm."""
    cur = await conn.execute(
        "SELECT a.step, a.variant, bool_or(a.holdout), count(*),"
        " count(*) FILTER (WHERE i.exit_reason = 'goal')"
        " FROM measure_arms a JOIN measure_instances i USING (customer_id, instance_id)"
        " WHERE a.journey = %(journey)s AND a.version = coalesce(%(version)s, a.version)"
        " GROUP BY a.step, a.variant ORDER BY a.step, a.variant",
        {"journey": journey, "version": version},
    )
    arms: dict[str, list[Arm]] = {}
    for step, variant, holdout, entries, conversions in await cur.fetchall():
        arms.setdefault(step, []).append(Arm(variant, holdout, entries, conversions))
    return [evaluate(step, step_arms) for step, step_arms in arms.items()]


def experiments_json(journey: str, version: int | None, found: list[Experiment]) -> Experiments:
    """`experiments(...)` in the API's shape."""
    return Experiments(
        journey=journey,
        version=version,
        experiments=[
            ExperimentJson(
                step=e.step,
                control=e.control,
                verdict=e.verdict,
                arms=[_arm_json(r) for r in e.arms],
            )
            for e in found
        ],
    )


def _arm_json(result: ArmResult) -> ArmJson:
    c = result.comparison
    return ArmJson(
        variant=result.arm.variant,
        holdout=result.arm.holdout,
        entries=result.arm.entries,
        conversions=result.arm.conversions,
        rate=result.arm.rate,
        difference=c.difference if c else None,
        ci_low=c.ci_low if c else None,
        ci_high=c.ci_high if c else None,
        p_value=c.p_value if c else None,
        verdict=result.verdict,
    )
