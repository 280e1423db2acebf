"""Customer-perceived cycle time over HTTP: `GET /v1/measure/tasks`.

Reads the task files in `ORCHESTRATOR_TASKS_DIR` on each call (so an edited file counts at
once) and measures them over the audit store, reading again only the customers whose
records changed since the last call (`measure/task_cache.py`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Security
from pydantic import BaseModel

from orchestrator.api.access import authorize
from orchestrator.api.errors import ApiError, error_responses
from orchestrator.api.state import AppState, app_state
from orchestrator.errors import JourneyValidationError
from orchestrator.journey.library import load_tasks
from orchestrator.journey.tasks import CompiledTask
from orchestrator.measure.task_cache import measure_tasks

__all__ = ["router"]

router = APIRouter(
    tags=["measure"],
    dependencies=[Security(authorize)],
    responses=error_responses({500: "A task file is invalid"}),
)


class BucketOut(BaseModel):
    """Spans longer than the previous bound and at most `le_seconds` (null: no bound)."""

    le_seconds: float | None
    count: int


class TimeOut(BaseModel):
    """A distribution of span lengths, in seconds (median and p90 null when empty)."""

    count: int
    median_seconds: float | None
    p90_seconds: float | None
    histogram: list[BucketOut]


class GapOut(BaseModel):
    """Where part of the gap was spent, with its seconds and share of the whole gap."""

    where: str
    party: str
    journey: str | None
    step: str | None
    channel: str | None
    seconds: float
    share: float


class TaskOut(BaseModel):
    """One task: customer and process time side by side, and the gap's top places."""

    task: str
    description: str
    customers: int
    completions: int
    customer_time: TimeOut
    process_time: TimeOut
    gap_seconds: float
    gap: list[GapOut]


class TaskList(BaseModel):
    """Every task of the task directory (empty when it has none)."""

    tasks: list[TaskOut]


def _read_tasks(directory: Path) -> list[CompiledTask]:
    if not directory.is_dir():
        return []
    try:
        return load_tasks([directory])
    except JourneyValidationError as exc:
        raise ApiError(
            500,
            "invalid_task_files",
            "; ".join(str(p) for p in exc.problems)
            + ": fix the task files (`orchestrator validate` lists the problems)",
        ) from exc


@router.get("/v1/measure/tasks", name="measure_tasks", response_model=TaskList)
async def tasks_figures(state: Annotated[AppState, Depends(app_state)]) -> dict[str, Any]:
    """Per task: customers, customer and process time (median, p90, histogram), the gap."""
    tasks = await asyncio.to_thread(_read_tasks, Path(state.settings.tasks_dir))
    if not tasks:
        return {"tasks": []}
    async with state.database.connection() as conn:
        figures = await measure_tasks(conn, tasks, state.personal)
    return {"tasks": [f.to_dict() for f in figures]}
