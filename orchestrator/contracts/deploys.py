"""The `journeys` topic's record: one journey's every deployed version, current one, status."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import TypeAdapter

from orchestrator.contracts.base import SCHEMA_VERSION, SchemaVersion, WireRecord
from orchestrator.engine.catalog import JourneyStatus
from orchestrator.journey.source import JourneySource, TemplateSource

__all__ = [
    "DEPLOY_RECORD",
    "DeployRecord",
    "OperatorAction",
    "SourceRecord",
    "TemplateRecord",
    "VersionEntry",
]


class OperatorAction(StrEnum):
    """What an operator did to a journey (recorded in its deploy and operator records)."""

    DEPLOY = "deploy"
    PAUSE = "pause"
    RESUME = "resume"
    ROLLBACK = "rollback"
    ARCHIVE = "archive"


@dataclass(slots=True, kw_only=True)
class TemplateRecord(WireRecord):
    """A template file shipped with a journey version."""

    path: str
    text: str


@dataclass(slots=True, kw_only=True)
class SourceRecord(WireRecord):
    """A journey file's text with the templates it uses, as deployed."""

    path: str
    text: str
    templates: dict[str, TemplateRecord]

    @classmethod
    def of(cls, source: JourneySource) -> SourceRecord:
        """The record of a journey source bundle."""
        return cls(
            path=source.path,
            text=source.text,
            templates={
                name: TemplateRecord(path=t.path, text=t.text)
                for name, t in source.templates.items()
            },
        )

    def to_source(self) -> JourneySource:
        """The bundle the journey compiler reads."""
        return JourneySource(
            path=self.path,
            text=self.text,
            templates={n: TemplateSource(t.path, t.text) for n, t in self.templates.items()},
        )


@dataclass(slots=True, kw_only=True)
class VersionEntry(WireRecord):
    """One deployed version: its source, the source's sha256, when and by whom."""

    source: SourceRecord
    digest: str
    deployed_at: str
    operator: str


@dataclass(slots=True, kw_only=True)
class DeployRecord(WireRecord):
    """A journey's deploy record (keyed by journey id; the compacted log keeps the last).

    It holds every version, so compaction loses nothing. `versions` is keyed by the version
    number as a string (JSON object keys); `updated_at`, `operator` and `action` say what
    changed the record last.
    """

    schema_version: SchemaVersion = SCHEMA_VERSION
    journey: str
    versions: dict[str, VersionEntry]
    current: int
    status: JourneyStatus
    updated_at: str
    operator: str
    action: OperatorAction

    @property
    def current_entry(self) -> VersionEntry:
        """The current version's entry."""
        return self.versions[str(self.current)]

    def version_numbers(self) -> list[int]:
        """Every deployed version, oldest first."""
        return sorted(int(v) for v in self.versions)


DEPLOY_RECORD: TypeAdapter[DeployRecord] = TypeAdapter(DeployRecord)
