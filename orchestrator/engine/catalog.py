"""The deployed journeys the engine applies: every version, the current one, and a status."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from orchestrator.journey.plan import CompiledJourney

__all__ = ["Catalog", "DeployedJourney", "JourneyStatus", "catalog_of"]

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
