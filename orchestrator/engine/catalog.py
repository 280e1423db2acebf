"""The deployed journeys the engine applies: every version, the current one, and a status."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from orchestrator.journey.plan import CompiledJourney

__all__ = ["Catalog", "DeployedJourney", "JourneyStatus", "catalog_of", "journeys_started_by"]

JourneyStatus = Literal["active", "paused", "archived"]


@dataclass(frozen=True, slots=True)
class DeployedJourney:
    """All deployed versions of one journey; new entries use `current`."""

    versions: Mapping[int, CompiledJourney]
    current: int
    status: JourneyStatus = "active"

    def latest(self) -> CompiledJourney:
        """The version new entries take."""
        return self.versions[self.current]


Catalog = Mapping[str, DeployedJourney]


def catalog_of(journeys: Iterable[CompiledJourney]) -> dict[str, DeployedJourney]:
    """A catalog where each journey is active at the version it was compiled with."""
    return {j.id: DeployedJourney(versions={j.version: j}, current=j.version) for j in journeys}


# Which journeys each event name may start, per catalog seen recently: id -> (the catalog,
# its items when indexed, the index). Checking every journey's trigger on every event cost
# ~15% of `advance()`. The items are compared on each use (identity first, so it is cheap):
# a catalog changed in place is indexed again. Holding the catalog keeps its id unique.
_INDEXES: dict[int, tuple[Catalog, list[tuple[str, DeployedJourney]], _TriggerIndex]] = {}
_INDEXES_KEPT = 16


@dataclass(frozen=True, slots=True)
class _TriggerIndex:
    """Active journeys by the event their current version starts on; `unloaded`: active
    journeys whose current version is not loaded, candidates for every event (as before the
    index, entering one fails unless the customer is already in it)."""

    by_event: dict[str, list[str]]
    unloaded: list[str]

    def started_by(self, event_name: str) -> list[str]:
        started = self.by_event.get(event_name, [])
        return sorted({*started, *self.unloaded}) if self.unloaded else started


def journeys_started_by(catalog: Catalog, event_name: str) -> list[str]:
    """Ids of the active journeys whose current version an event named `event_name`
    triggers, in id order (the order they are entered in)."""
    items = list(catalog.items())
    cached = _INDEXES.get(id(catalog))
    if cached is not None and cached[0] is catalog and cached[1] == items:
        return cached[2].started_by(event_name)
    index = _TriggerIndex({}, [])
    for journey_id, deployed in sorted(items, key=lambda item: item[0]):
        if deployed.status != "active":
            continue
        plan = deployed.versions.get(deployed.current)
        if plan is None:
            index.unloaded.append(journey_id)
        else:
            index.by_event.setdefault(plan.trigger_event, []).append(journey_id)
    if len(_INDEXES) >= _INDEXES_KEPT:
        _INDEXES.clear()
    _INDEXES[id(catalog)] = (catalog, items, index)
    return index.started_by(event_name)
