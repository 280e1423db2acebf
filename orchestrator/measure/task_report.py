"""Terminal tables of customer-perceived cycle time, for `orchestrator report`.

`render(console, figures)` takes the API's shape (`GET /v1/measure/tasks`, or
`{"tasks": [f.to_dict() for f in measure_tasks(...)]}`), so the report can come from either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["duration", "render"]

_BAR = 24  # width of the longest histogram bar, characters


def duration(seconds: float | None) -> str:
    """`93784` -> `1d 2h`, `5400` -> `1h 30m`, `42` -> `42s`; `-` for None."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    shown = [f"{n}{unit}" for n, unit in parts if n][:2]
    return " ".join(shown) or "0s"


def render(console: Console, figures: Mapping[str, Any]) -> None:
    """Print each task: customer vs process time, their histograms, where the gap goes."""
    tasks: Sequence[Mapping[str, Any]] = figures.get("tasks", [])
    if not tasks:
        console.print("No tasks: add task files to journeys/tasks/ (or ORCHESTRATOR_TASKS_DIR).")
        return
    for task in tasks:
        console.print(
            f"[bold]Task {task['task']}[/bold]: {task['description']}\n"
            f"{task['customers']} customers completed it "
            f"({task['completions']} times)"
        )
        console.print(_times(task))
        if task["completions"]:
            console.print(_histogram(task))
            console.print(_gap(task))


def _times(task: Mapping[str, Any]) -> Table:
    table = Table(title="Customer vs process time")
    table.add_column("")
    table.add_column("customer", justify="right")
    table.add_column("process", justify="right")
    customer, process = task["customer_time"], task["process_time"]
    table.add_row("spans", str(customer["count"]), str(process["count"]))
    for label, key in (("median", "median_seconds"), ("p90", "p90_seconds")):
        table.add_row(label, duration(customer[key]), duration(process[key]))
    table.add_row("gap (total)", duration(task["gap_seconds"]), "")
    return table


def _histogram(task: Mapping[str, Any]) -> Table:
    customer = task["customer_time"]["histogram"]
    process = task["process_time"]["histogram"]
    used = [i for i, (c, p) in enumerate(zip(customer, process, strict=True))
            if c["count"] or p["count"]]  # fmt: skip
    table = Table(title="Distribution (spans up to each bound)")
    table.add_column("up to", justify="right")
    table.add_column("customer")
    table.add_column("process")
    most = max(*(b["count"] for b in customer), *(b["count"] for b in process), 1)
    for i in range(used[0], used[-1] + 1):
        bound = customer[i]["le_seconds"]
        table.add_row(
            duration(bound) if bound is not None else "longer",
            _bar(customer[i]["count"], most),
            _bar(process[i]["count"], most),
        )
    return table


def _bar(count: int, most: int) -> str:
    return f"{'█' * round(_BAR * count / most)} {count}" if count else ""


def _gap(task: Mapping[str, Any]) -> Table:
    table = Table(title="Where the gap is spent (customer time outside the process)")
    table.add_column("waiting for")
    table.add_column("journey step")
    table.add_column("channel")
    table.add_column("time", justify="right")
    table.add_column("share", justify="right")
    for place in task["gap"]:
        step = f"{place['journey']}/{place['step']}" if place["journey"] else "-"
        table.add_row(
            "us" if place["party"] == "us" else "the customer",
            step,
            place["channel"] or "-",
            duration(place["seconds"]),
            f"{place['share']:.0%}",
        )
    return table
