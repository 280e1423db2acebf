"""Loading journey files from disk into compiled journeys, for the CLI and tests."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel

from orchestrator import jsonwire
from orchestrator.errors import JourneyValidationError, Problem
from orchestrator.journey.loader import validate_sources
from orchestrator.journey.model import Journey
from orchestrator.journey.plan import CompiledJourney
from orchestrator.journey.source import JourneySource, discover_journey_files, read_source
from orchestrator.journey.tasks import (
    TASK_DIR_NAME,
    CompiledTask,
    Task,
    is_task_file,
    validate_tasks,
)

__all__ = [
    "journey_schema",
    "load_journeys",
    "load_tasks",
    "read_sources",
    "read_tasks",
    "split_task_paths",
    "task_schema",
]


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


def split_task_paths(paths: Iterable[str | Path]) -> tuple[list[Path], list[Path]]:
    """(journey paths, task files): a `tasks/` directory or a file in one holds tasks, and a
    journey directory's own `tasks/` directory is read beside its journeys."""
    journeys: list[Path] = []
    tasks: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir() and path.name == TASK_DIR_NAME:
            tasks.extend(discover_journey_files([path]))
        elif path.is_dir():
            journeys.append(path)
            if (path / TASK_DIR_NAME).is_dir():
                tasks.extend(discover_journey_files([path / TASK_DIR_NAME]))
        elif is_task_file(path):
            tasks.append(path)
        else:
            journeys.append(path)
    return journeys, tasks


def read_tasks(paths: Iterable[Path]) -> tuple[list[CompiledTask], list[Problem]]:
    """Read and validate task files; unreadable files are problems too."""
    files: list[tuple[str, str]] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            files.append((str(path), path.read_text(encoding="utf-8")))
        except OSError as exc:
            problems.append(Problem(str(path), 1, 1, f"cannot read the file: {exc.strerror}"))
        except UnicodeDecodeError:
            problems.append(Problem(str(path), 1, 1, "not UTF-8 text: save the file as UTF-8"))
    tasks, more = validate_tasks(files)
    return tasks, problems + more


def load_tasks(paths: Iterable[str | Path]) -> list[CompiledTask]:
    """Every task under `paths` (task files or directories holding them); raises
    `JourneyValidationError` on any problem."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        files.extend(discover_journey_files([path]) if path.is_dir() else [path])
    tasks, problems = read_tasks(files)
    if problems:
        raise JourneyValidationError(problems)
    return tasks


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
    return _schema_text(Journey)


def task_schema() -> str:
    """The JSON Schema of task files, as committed in `journeys/tasks/task.schema.json`."""
    return _schema_text(Task)


def _schema_text(model: type[BaseModel]) -> str:
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return jsonwire.dumps_pretty(schema) + "\n"
