"""A journey compiled for the engine: plain frozen dataclasses, no pydantic in the hot path."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from orchestrator.journey.conditions import Condition
from orchestrator.journey.templates import MessageTemplate

__all__ = ["CompiledJourney", "ExitPlan", "StepKind", "StepPlan"]

StepKind = Literal["wait", "wait_for", "send", "branch", "split", "update_profile", "exit"]


@dataclass(frozen=True, slots=True)
class StepPlan:
    """One step with every reference resolved; `next` is None where the journey ends."""

    id: str
    kind: StepKind
    next: str | None
    seconds: float = 0.0
    event: str | None = None
    when: Condition | None = None
    on_event: str | None = None
    on_timeout: str | None = None
    channels: tuple[str, ...] = ()
    template: str | None = None
    # "nps" or "csat" when a send step asks a survey question
    survey: str | None = None
    cases: tuple[tuple[Condition, str], ...] = ()
    default: str | None = None
    # (variant, weight, next step); next is None on the holdout arm (it sends nothing)
    arms: tuple[tuple[str, int, str | None], ...] = ()
    updates: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExitPlan:
    """An exit rule: this event (and condition) ends the instance."""

    event: str
    when: Condition | None
    goal: bool


@dataclass(frozen=True, slots=True)
class CompiledJourney:
    """Everything the engine needs to run one version of a journey."""

    id: str
    version: int
    name: str
    category: str
    trigger_event: str
    trigger_when: Condition | None
    reentry: Literal["never", "always"] | float
    exits: tuple[ExitPlan, ...]
    max_duration: float | None
    window: tuple[int, int] | None
    cap: tuple[int, float] | None
    first: str
    steps: Mapping[str, StepPlan]
    templates: Mapping[str, MessageTemplate]
    digest: str
