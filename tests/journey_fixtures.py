"""Helpers for the engine, validate and simulate tests: small journeys, events and a driver.

Journeys are compiled from YAML text in memory (no files), with the `msg` template below, so
each test reads as the journey it exercises. `Driver` feeds events through the engine the same
way `orchestrator simulate` does (timers due at or before an event fire first).
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from orchestrator.engine.actions import Action, ConditionFailed, Entered, Exited, Sent, Suppressed
from orchestrator.engine.catalog import Catalog, DeployedJourney, catalog_of
from orchestrator.engine.config import DEFAULT_CONFIG, EngineConfig
from orchestrator.engine.events import Event
from orchestrator.journey.loader import compile_source
from orchestrator.journey.plan import CompiledJourney
from orchestrator.journey.source import JourneySource, TemplateSource
from orchestrator.simulate import Simulator
from orchestrator.timefmt import format_instant, parse_instant

FIXTURES = Path(__file__).parent / "fixtures"

# Monday 4 May 2026, 10:00 UTC: inside an 08:00-21:00 UTC window.
T0 = parse_instant("2026-05-04T10:00:00Z")
MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0

# One template with content for every channel, a French override of the email subject only,
# and Liquid reading `profile`, `event` and `journey`.
MSG_TEMPLATE = """\
email:
  subject: "Hi {{ profile.first_name | default: 'friend' }}"
  body: "Your cart holds {{ journey.trigger.properties.total }} EUR ({{ journey.variant }})"
sms: {body: "SMS for {{ profile.first_name }} at {{ event.name }}"}
whatsapp: {body: "WhatsApp {{ profile.first_name | upcase }}"}
push: {title: "Still thinking?", body: "{{ journey.trigger.properties.items | size }} items wait"}
in_app: {title: "In app", body: "Hello {{ profile.first_name }}"}
webhook:
  url: "https://hooks.example.com/{{ profile.first_name }}"
  payload: {customer: "{{ profile.first_name }}", count: 3, tags: ["a", "{{ event.name }}"]}
locales:
  fr:
    email: {subject: "Bonjour {{ profile.first_name | default: 'ami' }}"}
"""

TEMPLATES: dict[str, str] = {"msg": MSG_TEMPLATE, "other": "email: {subject: Other, body: B}\n"}

# A profile that every channel can reach (sms/whatsapp still need opt-in for marketing).
REACHABLE = {
    "first_name": "Ada",
    "email": "ada@example.com",
    "phone": "+33600000000",
    "push_token": "tok-1",
}


def journey_source(
    text: str, templates: Mapping[str, str] | None = None, path: str = "journey.yaml"
) -> JourneySource:
    """A journey's YAML (dedented) with in-memory templates (default: `TEMPLATES`)."""
    chosen = TEMPLATES if templates is None else templates
    return JourneySource(
        path=path,
        text=textwrap.dedent(text),
        templates={
            name: TemplateSource(f"templates/{name}.yaml", textwrap.dedent(body))
            for name, body in chosen.items()
        },
    )


def compile_journey(
    text: str, templates: Mapping[str, str] | None = None, version: int = 1
) -> CompiledJourney:
    """Compile a journey from YAML text; raises `JourneyValidationError` like the CLI reports."""
    return compile_source(journey_source(text, templates), version)


def iso(epoch: float) -> str:
    """Epoch seconds as the `at` string simulate prints."""
    return format_instant(epoch)


_ids = itertools.count(1)


def event(
    name: str,
    at: float,
    customer: str = "c1",
    *,
    channel: str | None = None,
    event_id: str | None = None,
    **properties: Any,
) -> Event:
    """A customer event; ids are unique unless given."""
    return Event(
        event_id=event_id or f"e{next(_ids)}",
        customer_id=customer,
        name=name,
        occurred_at=at,
        channel=channel,
        properties=properties,
    )


def profile(at: float, customer: str = "c1", **properties: Any) -> Event:
    """A `profile.updated` event merging `properties` into the profile."""
    return event("profile.updated", at, customer, **properties)


def consent(at: float, channel: str, status: str, customer: str = "c1") -> Event:
    """A `consent.updated` event setting `status` (opted_in / opted_out) for `channel`."""
    return Event(
        event_id=f"e{next(_ids)}",
        customer_id=customer,
        name="consent.updated",
        occurred_at=at,
        properties={"channel": channel, "status": status},
    )


class Driver:
    """Applies events one at a time through `Simulator`, keeping every action it produced."""

    def __init__(
        self,
        *journeys: CompiledJourney,
        catalog: Catalog | None = None,
        config: EngineConfig = DEFAULT_CONFIG,
    ) -> None:
        self.sim = Simulator(catalog if catalog is not None else catalog_of(journeys), config)
        self.actions: list[Action] = []

    @property
    def catalog(self) -> Catalog:
        return self.sim.catalog

    @catalog.setter
    def catalog(self, value: Catalog) -> None:
        self.sim.catalog = value

    def apply(self, *events: Event) -> list[Action]:
        """Fire timers due up to each event's time, then apply it; return the new actions."""
        new: list[Action] = []
        for item in events:
            new.extend(self.sim.run([item], until=item.occurred_at))
        self.actions.extend(new)
        return new

    def until(self, at: float | None) -> list[Action]:
        """Fire the timers due up to `at` (None: all of them)."""
        new = list(self.sim.run([], until=at))
        self.actions.extend(new)
        return new

    def records(self, actions: Iterable[Action] | None = None) -> list[dict[str, Any]]:
        """The simulate output records (enter/send/suppress/exit) among the actions."""
        chosen = self.actions if actions is None else actions
        return [
            a.to_record() for a in chosen if isinstance(a, Entered | Sent | Suppressed | Exited)
        ]

    def sends(self) -> list[Sent]:
        return [a for a in self.actions if isinstance(a, Sent)]

    def suppressions(self) -> list[Suppressed]:
        return [a for a in self.actions if isinstance(a, Suppressed)]

    def exits(self) -> list[Exited]:
        return [a for a in self.actions if isinstance(a, Exited)]

    def entries(self) -> list[Entered]:
        return [a for a in self.actions if isinstance(a, Entered)]

    def failures(self) -> list[ConditionFailed]:
        return [a for a in self.actions if isinstance(a, ConditionFailed)]


def deployed(
    *versions: CompiledJourney, current: int | None = None, status: str = "active"
) -> DeployedJourney:
    """A `DeployedJourney` holding the given versions (current: the highest unless given)."""
    by_version = {j.version: j for j in versions}
    return DeployedJourney(
        versions=by_version,
        current=current if current is not None else max(by_version),
        status=status,  # type: ignore[arg-type]
    )
