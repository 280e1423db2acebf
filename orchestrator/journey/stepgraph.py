"""A compiled journey as a drawable graph: one node per step, one edge per way out of it.

The dashboard draws this graph and puts the measured counts on it, so node ids are the step
ids the interaction records carry. Three kinds of node are not steps, and their ids start
with `@` so no step id (a slug) can take them: `@entry` (the trigger), `@end` (the journey
ends: after the last step, an `exit` step or a branch with nowhere to go) and `@holdout:STEP`
(the customers a split holds out, who wait for an exit rule or `max_duration`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.journey.plan import CompiledJourney, StepPlan
from orchestrator.timefmt import format_duration

__all__ = ["END", "ENTRY", "GraphEdge", "GraphExit", "GraphNode", "StepGraph", "step_graph"]

ENTRY = "@entry"
END = "@end"
_HOLDOUT = "@holdout:"


@dataclass(frozen=True, slots=True)
class GraphNode:
    """A step (kind = the step's kind), or `trigger`, `end` or `holdout`."""

    id: str
    kind: str
    label: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class GraphEdge:
    """A way from one node to another, labelled with what takes it (event, case, arm)."""

    source: str
    target: str
    label: str = ""


@dataclass(frozen=True, slots=True)
class GraphExit:
    """An exit rule: leaves from any step, so it is listed rather than drawn."""

    event: str
    goal: bool
    when: str | None


@dataclass(frozen=True, slots=True)
class StepGraph:
    """The graph of one version of a journey."""

    journey: str
    version: int
    name: str
    nodes: list[GraphNode] = field(default_factory=list)
    edges: list[GraphEdge] = field(default_factory=list)
    exits: list[GraphExit] = field(default_factory=list)
    max_duration_seconds: float | None = None

    def to_json(self) -> dict[str, object]:
        """As the API answers it (`from`/`to` for edges, like the measured edges)."""
        return {
            "journey": self.journey,
            "version": self.version,
            "name": self.name,
            "nodes": [
                {"id": n.id, "kind": n.kind, "label": n.label, "detail": n.detail}
                for n in self.nodes
            ],
            "edges": [{"from": e.source, "to": e.target, "label": e.label} for e in self.edges],
            "exits": [{"event": x.event, "goal": x.goal, "when": x.when} for x in self.exits],
            "max_duration_seconds": self.max_duration_seconds,
        }


def step_graph(journey: CompiledJourney) -> StepGraph:
    """The journey's steps in their written order, with every edge the engine can take."""
    trigger = journey.trigger_event
    if journey.trigger_when is not None:
        trigger += f" when {journey.trigger_when.source}"
    graph = StepGraph(
        journey=journey.id,
        version=journey.version,
        name=journey.name,
        exits=[
            GraphExit(x.event, x.goal, x.when.source if x.when is not None else None)
            for x in journey.exits
        ],
        max_duration_seconds=journey.max_duration,
    )
    graph.nodes.append(GraphNode(ENTRY, "trigger", "entry", trigger))
    graph.edges.append(GraphEdge(ENTRY, journey.first))
    ends = False
    for plan in journey.steps.values():
        graph.nodes.append(GraphNode(plan.id, plan.kind, plan.id, _detail(plan)))
        for target, label in _ways_out(plan):
            if target is None:
                ends = True
            graph.edges.append(GraphEdge(plan.id, target or END, label))
        for variant, weight, target in plan.arms:
            if target is None:
                holdout = f"{_HOLDOUT}{plan.id}"
                graph.nodes.append(GraphNode(holdout, "holdout", "held out", "waits for an exit"))
                graph.edges.append(GraphEdge(plan.id, holdout, f"{variant} {weight}% (holdout)"))
    if ends:
        graph.nodes.append(GraphNode(END, "end", "end", "completed"))
    return _merged(graph)


def _merged(graph: StepGraph) -> StepGraph:
    """One edge per (from, to), its labels joined: the measured counts are per pair."""
    labels: dict[tuple[str, str], list[str]] = {}
    for edge in graph.edges:
        labels.setdefault((edge.source, edge.target), []).append(edge.label)
    graph.edges[:] = [
        GraphEdge(source, target, " / ".join(label for label in texts if label))
        for (source, target), texts in labels.items()
    ]
    return graph


def _ways_out(plan: StepPlan) -> list[tuple[str | None, str]]:
    """(target, label) of each edge but the holdout arm's; None: the journey ends."""
    if plan.kind == "wait_for":
        return [(plan.on_event, plan.event or ""), (plan.on_timeout, "timeout")]
    if plan.kind == "branch":
        cases: list[tuple[str | None, str]] = [(t, c.source) for c, t in plan.cases]
        return [*cases, (plan.default, "otherwise")]
    if plan.kind == "split":
        return [(t, f"{v} {w}%") for v, w, t in plan.arms if t is not None]
    if plan.kind == "exit":
        return [(None, "")]
    return [(plan.next, "")]


def _detail(plan: StepPlan) -> str:
    """One line saying what the step does."""
    if plan.kind == "wait":
        return f"wait {format_duration(plan.seconds)}"
    if plan.kind == "wait_for":
        return f"wait for {plan.event}, up to {format_duration(plan.seconds)}"
    if plan.kind == "send":
        return f"{plan.template} by {' → '.join(plan.channels)}"
    if plan.kind == "update_profile":
        return "set " + ", ".join(plan.updates)
    return plan.kind.replace("_", " ")
