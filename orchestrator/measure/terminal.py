"""Journey figures as rich tables for `orchestrator report` (the figures come from
`figures.py`; this module only lays them out)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from orchestrator.measure.experiments import Experiment
from orchestrator.measure.figures import JourneyFigures, JourneySummary, MessageFigure
from orchestrator.measure.journeys import RECEIPT_OUTCOMES

__all__ = ["render_journey", "render_journeys"]


def _share(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 120:
        return f"{value:.0f}s"
    if value < 7200:
        return f"{value / 60:.1f}m"
    if value < 172_800:
        return f"{value / 3600:.1f}h"
    return f"{value / 86_400:.1f}d"


def render_journeys(console: Console, journeys: Sequence[JourneySummary]) -> None:
    """One row per journey: versions, entered, active, goals, conversion."""
    if not journeys:
        console.print("no journey figures yet: the audit sink has stored no journey records")
        return
    table = Table(title="Journeys")
    for column in ("journey", "versions", "entered", "active", "goals", "conversion"):
        table.add_column(column, justify="left" if column in ("journey", "versions") else "right")
    for j in journeys:
        table.add_row(
            j["journey"], ", ".join(map(str, j["versions"])), str(j["entered"]), str(j["active"]),
            str(j["goals"]), _share(j["conversion_rate"]),
        )  # fmt: skip
    console.print(table)


def render_journey(
    console: Console, figures: JourneyFigures, experiments: Sequence[Experiment]
) -> None:
    """A journey in full: headline, steps, messages, suppressions, experiments."""
    version = "all versions" if figures["version"] is None else f"version {figures['version']}"
    ttg = figures["time_to_goal"]
    exits = ", ".join(f"{reason} {n}" for reason, n in figures["exits"].items()) or "none"
    console.print(
        f"[bold]{figures['journey']}[/bold] ({version}): entered {figures['entered']}, "
        f"active {figures['active']}, goals {figures['goals']} "
        f"({_share(figures['conversion_rate'])}); exits: {exits}\n"
        f"time to goal over {ttg['count']}: median {_seconds(ttg['median_seconds'])}, "
        f"p90 {_seconds(ttg['p90_seconds'])}"
    )
    steps = Table(title="Steps")
    for column in ("step", "entered", "waiting", "passed", "exited"):
        steps.add_column(column, justify="left" if column == "step" else "right")
    for s in figures["steps"]:
        steps.add_row(
            s["step"], str(s["entered"]), str(s["waiting"]), str(s["passed"]), str(s["exited"])
        )
    console.print(steps)
    if figures["messages"]:
        console.print(_messages(figures["messages"]))
    if figures["suppressions"]:
        console.print(_suppressions(figures["messages"]))
    for experiment in experiments:
        console.print(_experiment(experiment))


def _messages(messages: Sequence[MessageFigure]) -> Table:
    """Per step and channel: sent, suppressed, and each receipt outcome."""
    outcomes = ("sent", "suppressed", *RECEIPT_OUTCOMES)
    rows: dict[tuple[str, str], dict[str, int]] = {}
    for m in messages:
        counts = rows.setdefault((m["step"], m["channel"]), {})
        counts[m["outcome"]] = counts.get(m["outcome"], 0) + m["count"]
    table = Table(title="Messages")
    table.add_column("step", no_wrap=True)
    table.add_column("channel", no_wrap=True)
    for outcome in outcomes:
        table.add_column(outcome, justify="right")
    for key, counts in rows.items():
        table.add_row(*key, *(str(counts.get(o, 0)) for o in outcomes))
    return table


def _suppressions(messages: Sequence[MessageFigure]) -> Table:
    """Why sends did not go out, per step and channel."""
    table = Table(title="Suppressions")
    for column in ("step", "channel", "reason", "count"):
        table.add_column(column, justify="right" if column == "count" else "left")
    for m in messages:
        if m["outcome"] == "suppressed":
            table.add_row(m["step"], m["channel"], m["reason"], str(m["count"]))
    return table


def _experiment(experiment: Experiment) -> Table:
    table = Table(
        title=f"Experiment at {experiment.step} (control: {experiment.control})",
        caption=experiment.verdict,
    )
    for column in ("arm", "entries", "conversions", "rate", "difference", "95% interval", "p"):
        table.add_column(column, justify="left" if column == "arm" else "right")
    for result in experiment.arms:
        arm, c = result.arm, result.comparison
        held = arm.holdout and arm.variant != "holdout"
        name = f"{arm.variant} (holdout)" if held else arm.variant
        table.add_row(
            name, str(arm.entries), str(arm.conversions), _share(arm.rate),
            f"{c.difference:+.1%}" if c else "-",
            f"{c.ci_low:+.1%} .. {c.ci_high:+.1%}" if c else "-",
            f"{c.p_value:.3f}" if c else "-",
        )  # fmt: skip
    return table
