"""A scenario run both by the simulator and by real workers, to compare what they send."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from orchestrator.control.operations import JourneyOperations
from orchestrator.engine.catalog import catalog_of
from orchestrator.engine.events import Event
from orchestrator.infra.settings import Settings
from orchestrator.journey.library import load_journeys, read_sources
from orchestrator.simulate import Simulator

JOURNEYS = Path(__file__).parent / "runtime_journeys"
OUTCOME_FIELDS = (
    "type",
    "customer_id",
    "journey",
    "step",
    "channel",
    "template",
    "variant",
    "content",
    "reason",
)


def scenario_events(customers: int, start: float | None = None) -> list[Event]:
    """Customers in four groups: use a feature (gold or not), time out, buy, or opt out."""
    base = start if start is not None else time.time()
    run = uuid.uuid4().hex[:6]
    events: list[Event] = []
    for n in range(customers):
        cid = f"cust-{run}-{n}"
        group = n % 4
        t = base + n * 0.001

        def add(
            name: str, props: dict[str, Any], offset: float, cid: str = cid, t: float = t
        ) -> None:
            events.append(Event(f"{cid}:{len(events)}", cid, name, t + offset, "web", props))

        profile: dict[str, Any] = {"first_name": f"Name{n}", "push_token": f"tok{n}"}
        if group != 3:
            profile["email"] = f"c{n}@example.com"
        if n % 8 == 0:
            profile["tier"] = "gold"
        add("profile.updated", profile, 0.0)
        add("signed_up", {"plan": "pro" if n % 2 else "free"}, 0.01)
        if group == 0:
            add("feature.used", {"feature": "editor"}, 0.02)
        elif group == 2:
            add("purchased", {"total": 10 + n}, 0.02)
    return events


def outcome(record: dict[str, Any]) -> tuple[Any, ...]:
    """The fields of a send/suppress/exit record that must match between sim and runtime."""
    return tuple(str(record.get(name)) for name in OUTCOME_FIELDS)


def simulated_outcomes(events: list[Event]) -> Counter[tuple[Any, ...]]:
    """What the simulator says the runtime must produce."""
    simulator = Simulator(catalog_of(load_journeys([JOURNEYS])))
    return Counter(
        outcome(action.to_record())
        for action in simulator.run(events)
        if action.to_record()["type"] in {"send", "suppress", "exit"}
    )


def runtime_outcomes(records: list[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
    """The same view of the interaction log."""
    return Counter(outcome(r) for r in records if r.get("type") in {"send", "suppress", "exit"})


async def deploy_scenario(settings: Settings) -> None:
    """Deploy the scenario's journeys to the isolated settings' deploy log."""
    sources, problems = read_sources([JOURNEYS])
    assert not problems
    await JourneyOperations(settings, "test").deploy(sources)
