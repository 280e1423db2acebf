"""The journey language as pydantic models: the boundary where YAML becomes typed data.

The JSON Schema committed as `journeys/journey.schema.json` is generated from `Journey`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
)

from orchestrator.timefmt import DURATION_PATTERN, parse_duration

__all__ = [
    "CHANNELS",
    "STEP_KINDS",
    "BranchCase",
    "BranchDefault",
    "BranchStep",
    "Channel",
    "ExitRule",
    "ExitStep",
    "FrequencyCap",
    "Journey",
    "ReentryAfter",
    "SendSpec",
    "SendStep",
    "SendWindow",
    "SplitArm",
    "SplitStep",
    "Step",
    "Trigger",
    "UpdateProfileStep",
    "WaitForSpec",
    "WaitForStep",
    "WaitStep",
]

Channel = Literal["email", "sms", "push", "whatsapp", "webhook", "in_app"]
CHANNELS: tuple[str, ...] = ("email", "sms", "push", "whatsapp", "webhook", "in_app")

SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
Slug = Annotated[str, Field(pattern=SLUG_PATTERN, max_length=64)]
StepRef = Annotated[str, Field(min_length=1, description="id of a step in this journey")]
Condition = Annotated[
    str,
    Field(min_length=1, description="CEL over `event`, `profile` and `journey`"),
]


def _check_duration(text: str) -> str:
    parse_duration(text)
    return text


# The patterns are checked by the validators (with messages saying what to write) and are
# given to the JSON Schema for editors.
Duration = Annotated[
    str,
    AfterValidator(_check_duration),
    Field(examples=["30m", "24h", "7d"], json_schema_extra={"pattern": DURATION_PATTERN}),
]


def _clock_from_yaml(value: Any) -> Any:
    # YAML 1.1 reads an unquoted 21:00 as the sexagesimal integer 1260; undo that.
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value // 60:02d}:{value % 60:02d}"
    return value


CLOCK_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d$"


def _check_clock(text: str) -> str:
    if not re.match(CLOCK_PATTERN, text):
        raise ValueError(f"bad time {text!r}: write HH:MM on a 24-hour clock, e.g. 08:00, 21:30")
    return text


ClockTime = Annotated[
    str,
    BeforeValidator(_clock_from_yaml),
    AfterValidator(_check_clock),
    Field(examples=["08:00", "21:30"], json_schema_extra={"pattern": CLOCK_PATTERN}),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Trigger(_Model):
    """The event that starts an instance, and an optional condition on it."""

    event: str = Field(min_length=1)
    when: Condition | None = None


class ReentryAfter(_Model):
    """Allow a new entry once this long has passed since the last one."""

    after: Duration


class ExitRule(_Model):
    """An event that ends an active instance at once (reason `goal` or `exit_event`)."""

    event: str = Field(min_length=1)
    when: Condition | None = None
    goal: bool = False


class SendWindow(_Model):
    """Local-time window (profile.timezone, default UTC) in which sends may go out."""

    start: ClockTime
    end: ClockTime


class FrequencyCap(_Model):
    """At most `max` sends from this journey per customer in any `per` period."""

    max: int = Field(ge=1)
    per: Duration


class _StepBase(_Model):
    id: Slug
    next: StepRef | None = None


class WaitStep(_StepBase):
    """Pause for a fixed duration."""

    wait: Duration


class WaitForSpec(_Model):
    """Wait for a matching event, or give up at `timeout`."""

    event: str = Field(min_length=1)
    when: Condition | None = None
    timeout: Duration
    on_event: StepRef | None = None
    on_timeout: StepRef | None = None


class WaitForStep(_StepBase):
    """Pause until an event arrives or a timeout passes."""

    wait_for: WaitForSpec


class SendSpec(_Model):
    """Send a template on a channel, trying `fallback` channels when it cannot go out."""

    channel: Channel
    template: Slug
    fallback: list[Channel] = Field(default_factory=list)
    survey: Literal["nps", "csat"] | None = Field(
        default=None,
        description="the message asks this survey's question: a reply is read as its answer",
    )


class SendStep(_StepBase):
    """Send a message."""

    send: SendSpec


class BranchCase(_Model):
    """Go to `next` when `when` holds."""

    when: Condition
    next: StepRef


class BranchDefault(_Model):
    """Go here when no case holds."""

    default: StepRef


class BranchStep(_StepBase):
    """First matching case wins; without a match, `default`, else the next step in the list."""

    branch: list[BranchCase | BranchDefault] = Field(min_length=1)


class SplitArm(_Model):
    """One variant of an A/B split and its share in percent.

    A `holdout` arm has no `next`: its customers get nothing and wait until an exit rule
    or `max_duration` ends them, to measure conversion without the journey.
    """

    variant: str = Field(min_length=1, max_length=32)
    weight: int = Field(ge=0, le=100)
    next: StepRef | None = None
    holdout: bool = False


class SplitStep(_StepBase):
    """Stable weighted split: a customer always gets the same variant of a step."""

    split: list[SplitArm] = Field(min_length=2)


class UpdateProfileStep(_StepBase):
    """Merge values (Liquid templates allowed in strings) into the customer's profile."""

    update_profile: dict[str, Any] = Field(min_length=1)


def _no_settings(value: dict[str, Any]) -> dict[str, Any]:
    if value:
        raise ValueError(
            f"exit takes no settings (got {', '.join(map(str, value))}): write `exit: {{}}`"
        )
    return value


class ExitStep(_StepBase):
    """End the instance with reason `completed`."""

    exit: Annotated[
        dict[str, Any],
        AfterValidator(_no_settings),
        Field(description="always empty: `exit: {}`", json_schema_extra={"maxProperties": 0}),
    ]


STEP_KINDS: tuple[str, ...] = (
    "wait",
    "wait_for",
    "send",
    "branch",
    "split",
    "update_profile",
    "exit",
)


def _step_kind(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return type(value).__name__
    if not isinstance(value, dict):
        return None
    kinds = [kind for kind in STEP_KINDS if kind in value]
    return kinds[0] if len(kinds) == 1 else None


Step = Annotated[
    Annotated[WaitStep, Tag("wait")]
    | Annotated[WaitForStep, Tag("wait_for")]
    | Annotated[SendStep, Tag("send")]
    | Annotated[BranchStep, Tag("branch")]
    | Annotated[SplitStep, Tag("split")]
    | Annotated[UpdateProfileStep, Tag("update_profile")]
    | Annotated[ExitStep, Tag("exit")],
    Discriminator(
        _step_kind,
        custom_error_type="step_kind",
        custom_error_message=(
            "a step needs an `id` and exactly one of: wait, wait_for, send, branch, split, "
            "update_profile, exit"
        ),
    ),
]


class Journey(_Model):
    """A journey definition, as written by marketing ops."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"title": "Orchestrator journey"},
    )

    id: Slug
    name: str = Field(min_length=1)
    description: str | None = None
    category: Literal["marketing", "transactional"] = "marketing"
    trigger: Trigger
    reentry: Literal["never", "always"] | ReentryAfter = "never"
    exit_when: list[ExitRule] = Field(default_factory=list)
    max_duration: Duration | None = None
    send_window: SendWindow | None = None
    frequency_cap: FrequencyCap | None = None
    steps: list[Step] = Field(min_length=1)
