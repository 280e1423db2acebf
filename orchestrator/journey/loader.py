"""Turn journey sources into compiled journeys, or into located, actionable problems."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from liquid.exceptions import LiquidError
from pydantic import ValidationError

from orchestrator.errors import JourneyValidationError, Problem
from orchestrator.journey import model as m
from orchestrator.journey.conditions import CelSyntaxError, Condition, compile_condition
from orchestrator.journey.graph import StepEdges, check_graph
from orchestrator.journey.plan import CompiledJourney, ExitPlan, StepPlan
from orchestrator.journey.problems import ProblemList, closest_union_member, field_name
from orchestrator.journey.source import JourneySource
from orchestrator.journey.templates import (
    BASE_CONTENT,
    MessageTemplate,
    TemplateError,
    compile_template,
    liquid_message,
    parse_liquid,
)
from orchestrator.journey.yamlpos import Located, Path, YamlSyntaxError, load_located
from orchestrator.timefmt import parse_duration

__all__ = ["compile_source", "validate_sources"]

_SAMPLE_SCOPE: dict[str, Any] = {
    "profile": {"first_name": "Ada", "locale": "en", "email": "ada@example.com"},
    "event": {
        "name": "sample",
        "channel": "web",
        "occurred_at": "2026-01-01T00:00:00Z",
        "properties": {},
    },
    "journey": {
        "entered_at": "2026-01-01T00:00:00Z",
        "variant": None,
        "trigger": {"name": "sample", "properties": {}},
        "last_event": {"name": "sample", "properties": {}},
    },
}


def compile_source(source: JourneySource, version: int = 1) -> CompiledJourney:
    """Validate and compile one journey; raises `JourneyValidationError` listing every problem."""
    return _Compiler(source, version).run()


def validate_sources(
    sources: Iterable[JourneySource],
) -> tuple[list[CompiledJourney], list[Problem]]:
    """Compile many journeys, also checking that ids are unique across them."""
    compiled: list[CompiledJourney] = []
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for source in sources:
        try:
            journey = compile_source(source)
        except JourneyValidationError as exc:
            problems.extend(exc.problems)
            continue
        if journey.id in seen:
            problems.append(
                Problem(
                    source.path,
                    1,
                    1,
                    f"journey id {journey.id!r} is already used by {seen[journey.id]}: ids must be "
                    "unique; rename one of them",
                )
            )
            continue
        seen[journey.id] = source.path
        compiled.append(journey)
    return compiled, problems


class _Compiler:
    def __init__(self, source: JourneySource, version: int) -> None:
        self.source = source
        self.version = version
        self.located = Located(data=None)
        self.problems = ProblemList(source.path, source.text, self.located)
        self.templates: dict[str, MessageTemplate | None] = {}
        self.bounded = False

    def run(self) -> CompiledJourney:
        try:
            self.located = load_located(self.source.text)
            self.problems.located = self.located
        except YamlSyntaxError as exc:
            raise JourneyValidationError(
                [Problem(self.source.path, exc.line, exc.col, str(exc))]
            ) from exc
        try:
            journey = m.Journey.model_validate(self.located.data)
        except ValidationError as exc:
            for error in closest_union_member(exc.errors(), self.located):
                self.problems.add_pydantic(error)
            raise JourneyValidationError(self.problems.sorted()) from exc
        plan = self._compile(journey)
        if self.problems.items or plan is None:
            raise JourneyValidationError(self.problems.sorted())
        return plan

    def _add(self, path: Path, message: str) -> None:
        self.problems.add(path, message)

    def _condition(self, source: str | None, path: Path) -> Condition | None:
        if source is None:
            return None
        try:
            return compile_condition(source)
        except CelSyntaxError as exc:
            line, col = self.problems.position_in_value(path, source, exc.line, exc.col)
            message = f"{self.problems.step_label(path)}{field_name(path)}: {exc}"
            self.problems.add_at(line, col, message)
            return None

    def _template(self, name: str, channels: tuple[str, ...], path: Path, label: str) -> None:
        if name not in self.templates:
            self.templates[name] = self._load_template(name, path, label)
        template = self.templates[name]
        if template is None:
            return
        for i, channel in enumerate(channels):
            if channel not in template.channels():
                where = (*path[:-1], "channel") if i == 0 else (*path[:-1], "fallback", i - 1)
                self._add(
                    where,
                    f"{label}template {name!r} has no {channel} content: add a "
                    f"`{channel}:` section to {self.source.templates[name].path}",
                )

    def _load_template(self, name: str, path: Path, label: str) -> MessageTemplate | None:
        found = self.source.templates.get(name)
        if found is None:
            self._add(
                path,
                f"{label}template {name!r} does not exist: create templates/{name}.yaml "
                "beside the journey, or pass --templates DIR",
            )
            return None
        try:
            located = load_located(found.text)
            template = compile_template(name, located)
        except YamlSyntaxError as exc:
            self.problems.items.append(Problem(found.path, exc.line, exc.col, str(exc)))
            return None
        except TemplateError as exc:
            line, col = located.where(exc.path)
            self.problems.items.append(Problem(found.path, line, col, f"template {name!r}: {exc}"))
            return None
        for locale in template.content:
            for channel in template.content[locale]:
                try:
                    template.render(channel, locale, _SAMPLE_SCOPE)
                except LiquidError as exc:
                    where: Path = () if locale == BASE_CONTENT else ("locales", locale)
                    line, col = located.where((*where, channel))
                    self.problems.items.append(
                        Problem(
                            found.path,
                            line,
                            col,
                            f"template {name!r}: {channel} content does not render: "
                            f"{liquid_message(exc)}; fix the Liquid expression",
                        )
                    )
                    return None
        return template

    def _compile(self, journey: m.Journey) -> CompiledJourney | None:
        # Whether instances end by themselves: a split's holdout arm needs it.
        self.bounded = journey.max_duration is not None
        order = [step.id for step in journey.steps]
        ids: dict[str, int] = {}
        for i, step in enumerate(journey.steps):
            if step.id in ids:
                self._add(
                    ("steps", i, "id"),
                    f"duplicate step id {step.id!r} (first used by step "
                    f"#{ids[step.id] + 1}): give each step its own id",
                )
            else:
                ids[step.id] = i
        following = {s: (order[i + 1] if i + 1 < len(order) else None) for i, s in enumerate(order)}
        plans: dict[str, StepPlan] = {}
        edges: dict[str, StepEdges] = {}
        for i, step in enumerate(journey.steps):
            plan = self._plan(step, i, following[step.id], ids)
            if step.id not in plans:
                plans[step.id] = plan
                edges[step.id] = StepEdges(plan.kind, _targets(plan))
        if self.problems.items:
            return None
        for problem in check_graph(order, edges):
            self._add(("steps", problem.index, "id"), problem.message)
        trigger_when = self._condition(journey.trigger.when, ("trigger", "when"))
        exits = tuple(
            ExitPlan(rule.event, self._condition(rule.when, ("exit_when", i, "when")), rule.goal)
            for i, rule in enumerate(journey.exit_when)
        )
        if self.problems.items:
            return None
        reentry: Any = journey.reentry
        if isinstance(reentry, m.ReentryAfter):
            reentry = parse_duration(reentry.after)
        window = None
        if journey.send_window is not None:
            window = (_minutes(journey.send_window.start), _minutes(journey.send_window.end))
            if window[0] == window[1]:
                self._add(
                    ("send_window",),
                    "send_window start and end are equal: the window "
                    "would never open; widen it or remove it",
                )
                return None
        cap = None
        if journey.frequency_cap is not None:
            cap = (journey.frequency_cap.max, parse_duration(journey.frequency_cap.per))
        return CompiledJourney(
            id=journey.id,
            version=self.version,
            name=journey.name,
            category=journey.category,
            trigger_event=journey.trigger.event,
            trigger_when=trigger_when,
            reentry=reentry,
            exits=exits,
            max_duration=parse_duration(journey.max_duration) if journey.max_duration else None,
            window=window,
            cap=cap,
            first=order[0],
            steps=plans,
            templates={n: t for n, t in self.templates.items() if t is not None},
            digest=self.source.digest(),
        )

    def _ref(self, target: str | None, path: Path, label: str, ids: dict[str, int]) -> str | None:
        if target is not None and target not in ids:
            self._add(path, f"{label}unknown step {target!r}: use one of {', '.join(ids)}")
        return target

    def _plan(self, step: m.Step, i: int, following: str | None, ids: dict[str, int]) -> StepPlan:
        label = f"step {step.id!r}: "
        base: Path = ("steps", i)
        nxt = self._ref(step.next, (*base, "next"), label, ids) or following
        if isinstance(step, m.WaitStep):
            return StepPlan(step.id, "wait", nxt, seconds=parse_duration(step.wait))
        if isinstance(step, m.WaitForStep):
            spec, at = step.wait_for, (*base, "wait_for")
            return StepPlan(
                step.id,
                "wait_for",
                nxt,
                seconds=parse_duration(spec.timeout),
                event=spec.event,
                when=self._condition(spec.when, (*at, "when")),
                on_event=self._ref(spec.on_event, (*at, "on_event"), label, ids) or nxt,
                on_timeout=self._ref(spec.on_timeout, (*at, "on_timeout"), label, ids) or nxt,
            )
        if isinstance(step, m.SendStep):
            channels = tuple(dict.fromkeys((step.send.channel, *step.send.fallback)))
            self._template(step.send.template, channels, (*base, "send", "template"), label)
            return StepPlan(
                step.id,
                "send",
                nxt,
                channels=channels,
                template=step.send.template,
                survey=step.send.survey,
            )
        if isinstance(step, m.BranchStep):
            return self._branch(step, base, nxt, label, ids)
        if isinstance(step, m.SplitStep):
            return self._split(step, base, nxt, label, ids)
        if isinstance(step, m.UpdateProfileStep):
            updates = {
                k: self._liquid(v, (*base, "update_profile", k), label)
                for k, v in step.update_profile.items()
            }
            return StepPlan(step.id, "update_profile", nxt, updates=updates)
        return StepPlan(step.id, "exit", None)

    def _split(
        self, step: m.SplitStep, base: Path, nxt: str | None, label: str, ids: dict[str, int]
    ) -> StepPlan:
        total = sum(arm.weight for arm in step.split)
        if total != 100:
            self._add(
                (*base, "split"),
                f"{label}split weights add up to {total}, not 100: adjust them so they sum to 100",
            )
        arms: list[tuple[str, int, str | None]] = []
        holdout: str | None = None
        for j, arm in enumerate(step.split):
            at = (*base, "split", j)
            if not arm.holdout:
                if arm.next is None:
                    self._add(
                        at,
                        f"{label}arm {arm.variant!r} has no `next`: name the step its customers "
                        "go to (only a `holdout: true` arm has none)",
                    )
                arms.append(
                    (arm.variant, arm.weight, self._ref(arm.next, (*at, "next"), label, ids))
                )
                continue
            arms.append((arm.variant, arm.weight, None))
            if holdout is not None:
                self._add(
                    (*at, "holdout"),
                    f"{label}arm {arm.variant!r} is a second holdout arm (after {holdout!r}): "
                    "a split has at most one; merge their weights into one holdout arm",
                )
            elif not self.bounded:
                self._add(
                    (*at, "holdout"),
                    f"{label}holdout arm {arm.variant!r} needs the journey's `max_duration`: "
                    "without it held-out customers who never convert wait forever; "
                    "set max_duration",
                )
            holdout = holdout or arm.variant
            if arm.next is not None:
                self._add(
                    (*at, "next"),
                    f"{label}holdout arm {arm.variant!r} must not have `next`: its customers "
                    "get nothing and wait for an exit rule or max_duration; remove `next`",
                )
        return StepPlan(step.id, "split", nxt, arms=tuple(arms))

    def _branch(
        self, step: m.BranchStep, base: Path, nxt: str | None, label: str, ids: dict[str, int]
    ) -> StepPlan:
        cases: list[tuple[Condition, str]] = []
        default = None
        for j, case in enumerate(step.branch):
            at = (*base, "branch", j)
            if isinstance(case, m.BranchDefault):
                if j != len(step.branch) - 1:
                    self._add(
                        at,
                        f"{label}`default` must be the last case of a branch; "
                        "cases after it could never match",
                    )
                default = self._ref(case.default, (*at, "default"), label, ids)
                continue
            condition = self._condition(case.when, (*at, "when"))
            target = self._ref(case.next, (*at, "next"), label, ids)
            if condition is not None and target is not None:
                cases.append((condition, target))
        return StepPlan(step.id, "branch", nxt, cases=tuple(cases), default=default or nxt)

    def _liquid(self, value: Any, path: Path, label: str) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return parse_liquid(value)
        except TemplateError as exc:
            self._add(path, f"{label}update_profile {path[-1]}: {exc}")
            return value


def _targets(plan: StepPlan) -> tuple[str | None, ...]:
    if plan.kind == "wait_for":
        return (plan.on_event, plan.on_timeout)
    if plan.kind == "branch":
        return (*(t for _, t in plan.cases), plan.default)
    if plan.kind == "split":
        return tuple(t for _, _, t in plan.arms)
    if plan.kind == "exit":
        return ()
    return (plan.next,)


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)
