"""Step-graph checks: references, reachability, and loops that never wait."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

__all__ = ["GraphProblem", "StepEdges", "check_graph"]

# Edges leaving these kinds take time, so a loop through one of them is safe.
_TIMED_KINDS = frozenset({"wait", "wait_for"})


@dataclass(frozen=True, slots=True)
class StepEdges:
    """A step's kind and the steps it can go to (None: the journey ends)."""

    kind: str
    targets: tuple[str | None, ...]


@dataclass(frozen=True, slots=True)
class GraphProblem:
    """A graph problem located at step number `index`."""

    index: int
    message: str


def check_graph(order: list[str], edges: Mapping[str, StepEdges]) -> Iterator[GraphProblem]:
    """Yield unreachable steps and zero-time cycles, in step order."""
    if not order:
        return
    position = {step: i for i, step in enumerate(order)}
    reached = _reachable(order[0], edges)
    for index, step in enumerate(order):
        if step not in reached:
            yield GraphProblem(
                index,
                f"step {step!r} is unreachable: no step leads to it; point a `next`, branch or "
                "wait_for target at it, or remove it",
            )
    seen_cycles: set[frozenset[str]] = set()
    for cycle in _instant_cycles(order, edges):
        key = frozenset(cycle)
        if key in seen_cycles:
            continue
        seen_cycles.add(key)
        loop = " -> ".join([*cycle, cycle[0]])
        yield GraphProblem(
            min(position[s] for s in cycle),
            f"steps {loop} form a loop without a wait: add a wait or wait_for step to the loop "
            "so a customer cannot spin forever",
        )


def _reachable(start: str, edges: Mapping[str, StepEdges]) -> set[str]:
    reached = {start}
    stack = [start]
    while stack:
        for target in edges[stack.pop()].targets:
            if target is not None and target in edges and target not in reached:
                reached.add(target)
                stack.append(target)
    return reached


def _instant_cycles(order: list[str], edges: Mapping[str, StepEdges]) -> Iterator[list[str]]:
    done: set[str] = set()
    for root in order:
        if root in done:
            continue
        path: list[str] = []
        on_path: set[str] = set()
        yield from _walk(root, edges, path, on_path, done)


def _walk(
    step: str,
    edges: Mapping[str, StepEdges],
    path: list[str],
    on_path: set[str],
    done: set[str],
) -> Iterator[list[str]]:
    path.append(step)
    on_path.add(step)
    node = edges[step]
    if node.kind not in _TIMED_KINDS:
        for target in node.targets:
            if target is None or target not in edges:
                continue
            if target in on_path:
                yield path[path.index(target) :]
            elif target not in done:
                yield from _walk(target, edges, path, on_path, done)
    path.pop()
    on_path.discard(step)
    done.add(step)
