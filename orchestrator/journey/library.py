"""Loading journey files from disk into compiled journeys, for the CLI and tests."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from orchestrator import jsonwire
from orchestrator.errors import JourneyValidationError, Problem
from orchestrator.journey.loader import validate_sources
from orchestrator.journey.model import Journey
from orchestrator.journey.plan import CompiledJourney
from orchestrator.journey.source import JourneySource, discover_journey_files, read_source

__all__ = ["journey_schema", "load_journeys", "read_sources"]


def read_sources(
    paths: Iterable[str | Path], template_dirs: Iterable[Path] = ()
) -> tuple[list[JourneySource], list[Problem]]:
    """Read journey files (directories expand to the files in them) with their templates."""
    sources: list[JourneySource] = []
    problems: list[Problem] = []
    dirs = list(template_dirs)
    for path in discover_journey_files(paths):
        try:
            sources.append(read_source(path, dirs))
        except OSError as exc:
            problems.append(Problem(str(path), 1, 1, f"cannot read the file: {exc.strerror}"))
        except UnicodeDecodeError:
            problems.append(Problem(str(path), 1, 1, "not UTF-8 text: save the file as UTF-8"))
    return sources, problems


def load_journeys(
    paths: Iterable[str | Path], template_dirs: Iterable[Path] = ()
) -> list[CompiledJourney]:
    """Compile every journey under `paths`; raises `JourneyValidationError` on any problem."""
    sources, problems = read_sources(paths, template_dirs)
    compiled, more = validate_sources(sources)
    problems.extend(more)
    if problems:
        raise JourneyValidationError(problems)
    return compiled


def journey_schema() -> str:
    """The JSON Schema of the journey language, as committed in `journeys/journey.schema.json`."""
    schema = Journey.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return jsonwire.dumps_pretty(schema) + "\n"
