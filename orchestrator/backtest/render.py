"""The backtest report as rich tables (from its JSON, so the CLI and the API say the same)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console, Group
from rich.table import Table

from orchestrator import jsonwire

__all__ = ["render_report", "render_verification"]


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold")
    for n, column in enumerate(columns):
        table.add_column(column, justify="left" if n < len(columns) - 2 else "right")
    return table


def _counts(rows: Iterable[dict[str, Any]], *key: str) -> dict[tuple[str, ...], int]:
    return {tuple(str(r[k]) for k in key): int(r["count"]) for r in rows}


def _side_by_side(
    title: str, columns: tuple[str, ...], deployed: dict[tuple[str, ...], int],
    draft: dict[tuple[str, ...], int],
) -> Table:  # fmt: skip
    table = _table(title, *columns, "deployed", "draft")
    for key in sorted(set(deployed) | set(draft)):
        old, new = deployed.get(key, 0), draft.get(key, 0)
        style = None if old == new else "bold yellow"
        table.add_row(*key, str(old), str(new), style=style)
    return table


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def render_report(report: dict[str, Any], console: Console) -> None:
    """Print a backtest report: what was replayed, then each table side by side."""
    window = report["window"]
    console.print(
        f"[bold]Backtest[/bold] {window['from']} .. {window['until']}: {report['events']} events "
        f"({report['events_before_window']} earlier ones for start states), "
        f"{report['customers']} customers"
    )
    for journey, versions in report["journeys"].items():
        deployed = (
            f"v{versions['deployed']}" if versions["deployed"] is not None else "not deployed"
        )
        console.print(f"  {journey}: deployed {deployed}, draft v{versions['draft']}")
    old, new = report["deployed"], report["draft"]
    journeys = sorted(set(old["entries"]) | set(new["entries"]))
    entries = _table("Entries and goals", "journey", "measure", "deployed", "draft")
    for journey in journeys:
        for label, a, b in (
            ("entries", old["entries"].get(journey, 0), new["entries"].get(journey, 0)),
            ("goals", old["goals"].get(journey, 0), new["goals"].get(journey, 0)),
            ("conversion", _percent(old["conversion"].get(journey)),
             _percent(new["conversion"].get(journey))),
        ):  # fmt: skip
            entries.add_row(journey, label, str(a), str(b), style=None if a == b else "bold yellow")
    key = ("journey", "step", "channel")
    console.print(
        Group(
            entries,
            _side_by_side("Sends per step and channel", key,
                          _counts(old["sends"], *key), _counts(new["sends"], *key)),
            _side_by_side("Suppressions by reason", ("journey", "reason"),
                          _counts(old["suppressions"], "journey", "reason"),
                          _counts(new["suppressions"], "journey", "reason")),
            _side_by_side("Exits by reason", ("journey", "reason"),
                          _counts(old["exits"], "journey", "reason"),
                          _counts(new["exits"], "journey", "reason")),
            _volume(report["limits"]),
        )
    )  # fmt: skip
    _caps(report["limits"], console)
    _changes(report["changes"], console)
    for note in report["start_state"]:
        console.print(f"[dim]start state: {note}[/dim]")


def _volume(limits: dict[str, Any]) -> Table:
    table = _table(
        "Send volume: busiest hour per provider",
        "provider", "busiest hour (draft)", "limit/hour", "deployed", "draft",
    )  # fmt: skip
    for provider, row in limits["providers"].items():
        limit = row["limit_per_hour"]
        cells = []
        for side in ("deployed_peak", "draft_peak"):
            peak = row[side]
            sends = 0 if peak is None else peak["sends"]
            over = limit is not None and sends > limit
            cells.append(f"[bold red]{sends} (over)[/bold red]" if over else str(sends))
        busiest = row["draft_peak"] or row["deployed_peak"]
        table.add_row(provider, busiest["hour"], "-" if limit is None else str(limit), *cells)
    return table


def _caps(limits: dict[str, Any], console: Console) -> None:
    for journey, caps in limits["frequency_caps"].items():
        console.print(f"frequency cap of {journey}: deployed {_cap(caps['deployed'])}, "
                      f"draft {_cap(caps['draft'])}")  # fmt: skip
    caps = limits["global_cap"]
    console.print(
        "global caps (ORCHESTRATOR_GLOBAL_CAP): "
        + (", ".join(f"{c} {m} per {p}" for c, (m, p) in caps.items()) if caps else "none")
    )


def _cap(cap: dict[str, float] | None) -> str:
    return "none" if cap is None else f"{cap['max']:g} per {cap['period_seconds']:g}s"


def _changes(changes: dict[str, Any], console: Console) -> None:
    key = ("journey", "step", "channel")
    console.print(
        _side_by_side(
            f"Messages only one version sends ({changes['customers']} customers differ)", key,
            _counts(changes["removed"], *key), _counts(changes["added"], *key),
        )
    )  # fmt: skip
    for sample in changes["sample"]:
        old = {_identity(m) for m in sample["deployed"]}
        new = {_identity(m) for m in sample["draft"]}
        table = _table(
            f"Customer {sample['customer_id']}: messages that differ "
            f"({len(old & new)} identical not shown)",
            "version", "at", "step", "channel", "message",
        )  # fmt: skip
        table.columns[-1].justify = "left"
        table.columns[-2].justify = "left"
        for side, theirs in (("deployed", new), ("draft", old)):
            for message in sample[side]:
                if _identity(message) not in theirs:
                    table.add_row(side, message["at"][:16], message["step"], message["channel"],
                                  _content(message["content"]))  # fmt: skip
        console.print(table)


def _identity(message: dict[str, Any]) -> bytes:
    return jsonwire.dumps([message[k] for k in ("journey", "step", "channel", "at", "content")])


def _content(content: dict[str, Any]) -> str:
    """A rendered message, one field a line (long bodies cut: the JSON report has them)."""
    lines = []
    for name, value in content.items():
        text = " ".join(str(value).split())
        lines.append(f"{name}: {text if len(text) <= 120 else text[:119] + '…'}")
    return "\n".join(lines)


def render_verification(result: dict[str, Any], console: Console) -> None:
    """Print a verification: counts, then every difference with its cause."""
    window = result["window"]
    console.print(
        f"[bold]Verify[/bold] {window['from']} .. {window['until']}: "
        f"{result['live_sends']} sends live, {result['replayed_sends']} replayed, "
        f"{result['matching']} identical"
    )
    table = _table("Differences", "message", "customer", "journey/step", "at", "difference",
                   "cause")  # fmt: skip
    for column in table.columns:
        column.justify = "left"
    for diff in result["differences"]:
        table.add_row(
            diff["message_id"][:8], diff["customer_id"], f"{diff['journey']}/{diff['step']}",
            diff["at"][:16], diff["difference"],
            diff["cause"] or "[bold red]unexplained[/bold red]",
        )  # fmt: skip
    console.print(table)
    console.print(
        f"{result['explained']} explained, [bold]{result['unexplained']} unexplained[/bold]"
    )
