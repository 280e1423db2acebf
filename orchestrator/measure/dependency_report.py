"""Terminal tables of a journey's touch-point dependency map, for `orchestrator report JOURNEY`.

`render(console, data)` takes the API's shape (`GET /v1/journeys/{id}/dependencies`, or
`LiveDependencies.to_json()`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["render"]


def render(console: Console, data: Mapping[str, Any]) -> None:
    """Per send step what it depends on, the single points of failure, who is held now."""
    table = Table(title=f"Touch-point dependencies of {data['journey']} v{data['version']}")
    for column in ("step", "channels", "providers", "links to", "single point of failure"):
        table.add_column(column)
    for send in data["sends"]:
        table.add_row(
            send["step"],
            " → ".join(send["channels"]),
            ", ".join(dict.fromkeys(send["providers"])),
            ", ".join(send["link_hosts"]) or "-",
            f"[red]{send['single_point']}[/red]" if send["single_point"] else "-",
        )
    console.print(table)
    circuits = Table(title="Provider circuits now")
    circuits.add_column("provider")
    circuits.add_column("state")
    for provider, circuit in data["circuits"].items():
        state = circuit["state"]
        until = f" until {circuit['open_until']}" if circuit.get("open_until") else ""
        circuits.add_row(
            provider, state + until if state == "closed" else f"[red]{state}{until}[/red]"
        )
    console.print(circuits)
    if not data["held"]:
        console.print("No customer is held: no message of this journey waits for a retry.")
        return
    held = Table(title="Customers held now (messages waiting in a retry schedule)")
    for column in ("step", "channel", "provider", "customers", "messages"):
        held.add_column(column, justify="right" if column in ("customers", "messages") else "left")
    for row in data["held"]:
        held.add_row(
            row["step"],
            row["channel"],
            row["provider"],
            str(row["customers"]),
            str(row["messages"]),
        )
    console.print(held)
