"""Task files: what a customer sets out to do, measured the way they live it.

A task (`journeys/tasks/<id>.yaml`) names the customer's span, from the first event of a
kind to an outcome event, and the process's own span inside it, e.g. "first order ->
delivered at the door" beside "order placed -> shipped". `docs/measurement.md` says how the
figures are computed from the audit store; this module only reads and validates the files,
with every problem as a `FILE:LINE:COL: message` line like journey validation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from orchestrator.errors import Problem
from orchestrator.journey.conditions import CelSyntaxError, Condition, compile_condition
from orchestrator.journey.model import Duration, Slug
from orchestrator.journey.problems import ProblemList, closest_union_member, field_name
from orchestrator.journey.yamlpos import Located, YamlSyntaxError, load_located
from orchestrator.journey.yamlpos import Path as YamlPath
from orchestrator.timefmt import parse_duration

__all__ = [
    "TASK_DIR_NAME",
    "CompiledTask",
    "EventMatch",
    "Task",
    "TaskEvent",
    "compile_task",
    "is_task_file",
    "validate_tasks",
]

TASK_DIR_NAME = "tasks"
"""Task files live in a directory of this name (`journeys/tasks/`)."""


_PROPERTY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


def _check_property(name: str) -> str:
    if not re.match(_PROPERTY_PATTERN, name):
        raise ValueError(
            f"{name!r} is not a property name: write the name of an event property "
            "(letters, digits and _), e.g. order_id"
        )
    return name


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskEvent(_Model):
    """An event that opens or closes a span, and an optional CEL condition on it (`event`)."""

    event: str = Field(min_length=1)
    when: str | None = Field(None, min_length=1, description="CEL over `event`")


class ProcessSpan(_Model):
    """The process's own span, measured inside the customer's."""

    starts: TaskEvent
    ends: TaskEvent


class Task(_Model):
    """One task file."""

    id: Slug
    description: str = Field(min_length=1)
    starts: TaskEvent
    ends: TaskEvent
    process: ProcessSpan
    match: Annotated[str, AfterValidator(_check_property)] | None = Field(
        None,
        description="a property every event of one task carries, e.g. order_id",
        json_schema_extra={"pattern": _PROPERTY_PATTERN},
    )
    within: Duration | None = None


@dataclass(frozen=True, slots=True)
class EventMatch:
    """A compiled `TaskEvent`: the event's name and its condition, if any."""

    name: str
    when: Condition | None


@dataclass(frozen=True, slots=True)
class CompiledTask:
    """A validated task, ready to measure."""

    id: str
    description: str
    starts: EventMatch
    ends: EventMatch
    process_starts: EventMatch
    process_ends: EventMatch
    match: str | None
    within: float | None  # seconds


def compile_task(path: str, text: str) -> tuple[CompiledTask | None, list[Problem]]:
    """Validate one task file: the task, or every problem found in it (file order)."""
    try:
        located = load_located(text)
    except YamlSyntaxError as exc:
        return None, [Problem(path, exc.line, exc.col, str(exc))]
    problems = ProblemList(path, text, located)
    if not isinstance(located.data, dict):
        what = "empty" if located.data is None else f"a {type(located.data).__name__}"
        problems.add(
            (),
            f"the file is {what}, not a task: write a YAML mapping with id, description, "
            "starts, ends and process",
        )
        return None, problems.sorted()
    try:
        task = Task.model_validate(located.data)
    except ValidationError as exc:
        for error in closest_union_member(exc.errors(), located):
            problems.add_pydantic(error)
        return None, problems.sorted()
    spans = (
        (task.starts, ("starts",)),
        (task.ends, ("ends",)),
        (task.process.starts, ("process", "starts")),
        (task.process.ends, ("process", "ends")),
    )
    matches = [_event(spec, at, problems, located) for spec, at in spans]
    for first, second, at in (
        (task.starts, task.ends, ("ends", "event")),
        (task.process.starts, task.process.ends, ("process", "ends", "event")),
    ):
        if first.event == second.event and first.when == second.when:
            problems.add(
                at,
                f"{field_name(at[:-1])}: the span starts and ends on the same event "
                f"{first.event!r}: end it on the outcome event, or tell them apart with `when`",
            )
    if problems.items:
        return None, problems.sorted()
    starts, ends, process_starts, process_ends = (m for m in matches if m is not None)
    within = parse_duration(task.within) if task.within is not None else None
    return (
        CompiledTask(
            task.id,
            task.description,
            starts,
            ends,
            process_starts,
            process_ends,
            task.match,
            within,
        ),
        [],
    )


def _event(
    spec: TaskEvent, at: YamlPath, problems: ProblemList, located: Located
) -> EventMatch | None:
    if spec.when is None:
        return EventMatch(spec.event, None)
    where = (*at, "when")
    try:
        condition = compile_condition(spec.when)
    except CelSyntaxError as exc:
        line, col = problems.position_in_value(where, spec.when, exc.line, exc.col)
        unknown = _UNKNOWN_VARIABLE.match(str(exc))
        message = _only_event(unknown[1]) if unknown else str(exc)
        problems.add_at(line, col, f"{field_name(where)}: {message}")
        return None
    if condition.variables not in ((), ("event",)):
        others = ", ".join(v for v in condition.variables if v != "event")
        problems.add(where, f"{field_name(where)}: {_only_event(others)}")
        return None
    return EventMatch(spec.event, condition)


_UNKNOWN_VARIABLE = re.compile(r"unknown variable (.+?) in ")


def _only_event(names: str) -> str:
    return (
        f"a task's condition sees only `event` (the event being matched), not {names}: "
        "write it over event.name, event.channel or event.properties"
    )


def validate_tasks(files: Iterable[tuple[str, str]]) -> tuple[list[CompiledTask], list[Problem]]:
    """Validate task files given as (path, text), checking ids are unique across them."""
    tasks: list[CompiledTask] = []
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for path, text in files:
        task, found = compile_task(path, text)
        problems.extend(found)
        if task is None:
            continue
        if task.id in seen:
            line, col = load_located(text).where(("id",))
            problems.append(
                Problem(
                    path,
                    line,
                    col,
                    f"task id {task.id!r} is already used by {seen[task.id]}: ids must be "
                    "unique; rename one of them",
                )
            )
            continue
        seen[task.id] = path
        tasks.append(task)
    return tasks, problems


def is_task_file(path: Path) -> bool:
    """Is this file a task (it sits in a `tasks/` directory) rather than a journey?"""
    return path.parent.name == TASK_DIR_NAME
