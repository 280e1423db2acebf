"""Steps are listed in journey order: by distance from where instances start."""

from __future__ import annotations

from orchestrator.measure.figures import Edge, StepFigures, in_journey_order


def _step(name: str, entered: int) -> StepFigures:
    return StepFigures(step=name, entered=entered, waiting=0, passed=0, exited=0)


def _edge(a: str, b: str) -> Edge:
    return {"from": a, "to": b, "count": 1}


def test_a_split_then_a_loop_back_to_the_start() -> None:
    steps = [_step(n, e) for n, e in (("last", 5), ("ab", 10), ("b", 4), ("a", 6), ("wait", 9))]
    edges = [_edge(*e) for e in (("ab", "a"), ("ab", "b"), ("a", "wait"), ("b", "wait"))]
    edges += [_edge("wait", "last"), _edge("last", "ab"), _edge("wait", "wait")]
    # `ab` is led to (the loop), so the most entered step starts; arms by entries.
    assert [s["step"] for s in in_journey_order(steps, edges)] == ["ab", "a", "b", "wait", "last"]


def test_every_step_nothing_leads_to_is_a_start_and_no_edges_means_by_entries() -> None:
    steps = [_step("x", 1), _step("start", 3), _step("next", 2), _step("orphan", 7)]
    ordered = in_journey_order(steps, [_edge("start", "next"), _edge("orphan", "orphan")])
    # Nothing leads to `x` or to `orphan` (itself aside): starts, like `start`, by entries.
    assert [s["step"] for s in ordered] == ["orphan", "start", "x", "next"]
    assert [s["step"] for s in in_journey_order(steps, [])] == ["orphan", "start", "next", "x"]
