"""The step graph the dashboard draws, from compiled library journeys: every way out of every
step, labelled, and the nodes that are not steps."""

from __future__ import annotations

from orchestrator.journey.library import load_journeys
from orchestrator.journey.loader import compile_source
from orchestrator.journey.plan import CompiledJourney
from orchestrator.journey.stepgraph import END, ENTRY, step_graph
from orchestrator.timefmt import format_duration, parse_duration
from tests.runtime_harness import journey_source


def _journey(name: str) -> CompiledJourney:
    [journey] = [j for j in load_journeys(["journeys"]) if j.id == name]
    return journey


def test_waits_branches_and_exit_steps_become_labelled_edges() -> None:
    graph = step_graph(_journey("nps-survey"))
    edges = {(e.source, e.target): e.label for e in graph.edges}
    assert edges[(ENTRY, "settle")] == ""
    assert edges[("await_score", "classify")] == "survey.answered"
    assert edges[("await_score", "done")] == "timeout"
    assert edges[("classify", "promoter")].endswith(">= 9")
    assert edges[("classify", "remember")] == "otherwise"
    assert edges[("done", END)] == ""
    kinds = {n.id: n.kind for n in graph.nodes}
    assert (kinds[ENTRY], kinds["settle"], kinds["classify"], kinds[END]) == (
        "trigger",
        "wait",
        "branch",
        "end",
    )
    details = {n.id: n.detail for n in graph.nodes}
    assert details["settle"] == "wait 7d"
    assert details["await_score"] == "wait for survey.answered, up to 5d"
    assert [(x.event, x.goal) for x in graph.exits] == [("account.closed", False)]


def test_split_arms_are_edges_and_the_last_step_leads_to_the_end() -> None:
    graph = step_graph(_journey("win-back"))
    edges = {(e.source, e.target): e.label for e in graph.edges}
    assert edges[("subject_test", "miss_you_a")] == "A 50%"
    assert edges[("subject_test", "miss_you_b")] == "B 50%"
    assert edges[("last_call", END)] == ""
    # Every node an edge names is drawn, and each (from, to) pair is one edge.
    ids = {n.id for n in graph.nodes}
    assert {p for e in graph.edges for p in (e.source, e.target)} <= ids
    assert len(edges) == len(graph.edges)


HOLDOUT_YAML = """\
id: held
name: Holdout test
trigger: {event: signed_up}
exit_when: [{event: purchased, goal: true}]
max_duration: 14d
steps:
  - id: offer_test
    split:
      - {variant: mail, weight: 90, next: offer}
      - {variant: none, weight: 10, holdout: true}
  - id: offer
    send: {channel: in_app, template: note}
"""


def test_a_holdout_arm_leads_to_a_holdout_node() -> None:
    source = journey_source(HOLDOUT_YAML, {"note": 'in_app: {title: "Hi", body: "Offer"}'})
    graph = step_graph(compile_source(source))
    edges = {(e.source, e.target): e.label for e in graph.edges}
    assert edges[("offer_test", "offer")] == "mail 90%"
    assert edges[("offer_test", "@holdout:offer_test")] == "none 10% (holdout)"
    assert edges[("offer", END)] == ""
    kinds = {n.id: n.kind for n in graph.nodes}
    assert kinds["@holdout:offer_test"] == "holdout"
    assert graph.max_duration_seconds == 14 * 86400


def test_every_library_journey_has_a_connected_graph() -> None:
    for journey in load_journeys(["journeys"]):
        graph = step_graph(journey)
        reached = {ENTRY}
        for _ in graph.nodes:
            reached |= {e.target for e in graph.edges if e.source in reached}
        assert reached == {n.id for n in graph.nodes}, journey.id


def test_durations_print_as_journeys_write_them() -> None:
    for text, printed in (("7d", "7d"), ("24h", "1d"), ("1h30m", "1h30m"), ("1500ms", "1s500ms")):
        assert format_duration(parse_duration(text)) == printed
