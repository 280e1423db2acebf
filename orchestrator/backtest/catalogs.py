"""The two catalogs a backtest compares: what is deployed, and the same with the draft in.

Both hold every deployed journey (a global cap counts sends across journeys, so leaving the
others out would change what the changed journey may send); the draft replaces the journeys
it names, compiled as the next version each would get if it were deployed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.engine.catalog import DeployedJourney
from orchestrator.errors import JourneyValidationError
from orchestrator.infra.deploylog import JourneyRecords, compile_record
from orchestrator.journey.loader import compile_source, validate_sources
from orchestrator.journey.source import JourneySource
from orchestrator.timefmt import parse_instant

__all__ = ["Catalogs", "catalog_at", "catalogs_for"]


@dataclass(frozen=True, slots=True)
class Catalogs:
    """The deployed catalog and the draft catalog, and which journeys the draft changes."""

    deployed: dict[str, DeployedJourney]
    draft: dict[str, DeployedJourney]
    changed: tuple[str, ...]

    def versions(self, journey: str) -> tuple[int | None, int]:
        """(deployed current version or None, the draft's version) of a changed journey."""
        deployed = self.deployed.get(journey)
        return (deployed.current if deployed else None), self.draft[journey].current


def catalogs_for(records: JourneyRecords, sources: Sequence[JourneySource]) -> Catalogs:
    """Deployed journeys from the deploy log's records, and the draft `sources` compiled in."""
    compiled, problems = validate_sources(sources)
    if problems:
        raise JourneyValidationError(problems)
    deployed = {journey: compile_record(record) for journey, record in records.items()}
    draft = dict(deployed)
    for journey, source in zip(compiled, sources, strict=True):
        known = deployed.get(journey.id)
        version = max(known.versions, default=0) + 1 if known else 1
        plan = compile_source(source, version)
        versions = {**(known.versions if known else {}), version: plan}
        draft[journey.id] = DeployedJourney(versions=versions, current=version, status="active")
    return Catalogs(deployed, draft, tuple(j.id for j in compiled))


def catalog_at(records: JourneyRecords, instant: float) -> dict[str, DeployedJourney]:
    """The catalog as it stood at `instant`, by the versions' deploy times.

    Each journey runs the latest version deployed at or before `instant`; one first deployed
    later runs its first version (differences before that deploy are explained by it).
    Pauses and rollbacks are not replayed: the audit store's operator records explain them.
    """
    catalog: dict[str, DeployedJourney] = {}
    for journey, record in records.items():
        compiled = compile_record(record)
        times = {int(v): parse_instant(e.deployed_at) for v, e in record.versions.items()}
        before = [v for v, at in times.items() if at <= instant]
        current = max(before) if before else min(times)
        catalog[journey] = DeployedJourney(versions=compiled.versions, current=current)
    return catalog
