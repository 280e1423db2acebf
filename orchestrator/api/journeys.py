"""`/v1/journeys` (operator): validate, deploy, list, show, pause, resume, rollback, archive.

Thin over `control.operations.JourneyOperations`, the service the CLI also calls.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Security
from pydantic import BaseModel, Field

from orchestrator.api.access import authorize
from orchestrator.api.errors import ApiError, error_responses
from orchestrator.api.state import AppState, app_state
from orchestrator.control.keys import ApiKey
from orchestrator.control.operations import JourneyOperations
from orchestrator.engine.catalog import JourneyStatus
from orchestrator.journey.loader import validate_sources
from orchestrator.journey.source import JourneySource, TemplateSource

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/journeys",
    tags=["journeys"],
    dependencies=[Security(authorize)],
    responses=error_responses(
        {404: "Journey not deployed", 409: "Another operator action is running"}
    ),
)

# An API call waits this long for another operator action to finish (409 after).
_LOCK_WAIT_SECONDS = 10.0
# Deploys read the deploy log and write it back: allow more than one produce round trip.
_OPERATION_SECONDS = 60.0


class JourneyFile(BaseModel):
    """A journey's YAML, and the templates it uses by name (their YAML)."""

    yaml: str = Field(max_length=1_000_000)
    path: str = Field("journey.yaml", min_length=1, max_length=200)
    templates: dict[str, str] = Field(default_factory=dict)

    def source(self) -> JourneySource:
        """As the loader takes it."""
        return JourneySource(
            self.path,
            self.yaml,
            {n: TemplateSource(f"templates/{n}.yaml", t) for n, t in self.templates.items()},
        )


class ProblemOut(BaseModel):
    """One problem, located as the CLI prints it (1-based line and column)."""

    file: str
    line: int
    col: int
    message: str


class Validation(BaseModel):
    """Whether the journey is valid, and every problem found."""

    valid: bool
    journey: str | None
    problems: list[ProblemOut]


class Deployed(BaseModel):
    """What a deploy did."""

    journey: str
    version: int
    changed: bool


class JourneySummary(BaseModel):
    """A deployed journey in the list."""

    journey: str
    status: str
    current: int
    versions: int
    updated_at: str | None
    operator: str | None


class JourneyDetail(JourneySummary):
    """A deployed journey: versions, the current YAML, live counters."""

    yaml: str
    history: list[dict[str, Any]]
    counters: dict[str, int]
    active_customers: int


class Rollback(BaseModel):
    """Which version to make current again (default: the one before the current)."""

    version: int | None = Field(None, ge=1)


def _operations(state: AppState, caller: ApiKey) -> JourneyOperations:
    operator = state.operator_name(caller.name, caller.key_id)
    return JourneyOperations(state.settings, operator, lock_wait=_LOCK_WAIT_SECONDS)


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "journey": record["journey"],
        "status": record["status"],
        "current": int(record["current"]),
        "versions": len(record["versions"]),
        "updated_at": record.get("updated_at"),
        "operator": record.get("operator"),
    }


@router.post("/validate", name="validate_journey", response_model=Validation)
async def validate_journey(body: JourneyFile) -> Validation:
    """Check a journey without deploying it; problems carry line and column."""
    compiled, problems = validate_sources([body.source()])
    return Validation(
        valid=not problems,
        journey=compiled[0].id if compiled else None,
        problems=[
            ProblemOut(file=p.file, line=p.line, col=p.col, message=p.message) for p in problems
        ],
    )


@router.post("", name="deploy_journey", response_model=Deployed)
async def deploy_journey(
    body: JourneyFile,
    state: Annotated[AppState, Depends(app_state)],
    caller: Annotated[ApiKey, Security(authorize)],
) -> Deployed:
    """Validate and deploy; a new version only when the content changed (422 if invalid)."""
    async with state.call(_OPERATION_SECONDS):
        [outcome] = await _operations(state, caller).deploy([body.source()])
    return Deployed(journey=outcome.journey, version=outcome.version, changed=outcome.changed)


@router.get("", name="list_journeys", response_model=list[JourneySummary])
async def list_journeys(
    state: Annotated[AppState, Depends(app_state)],
    caller: Annotated[ApiKey, Security(authorize)],
) -> list[JourneySummary]:
    """Every deployed journey with its status and current version."""
    async with state.call(_OPERATION_SECONDS):
        records = await _operations(state, caller).records()
    return [JourneySummary(**_summary(records[j])) for j in sorted(records)]


@router.get("/{journey}", name="show_journey", response_model=JourneyDetail)
async def show_journey(
    journey: str,
    state: Annotated[AppState, Depends(app_state)],
    caller: Annotated[ApiKey, Security(authorize)],
) -> JourneyDetail:
    """One journey: its versions, the current version's YAML and live counters."""
    operations = _operations(state, caller)
    async with state.call(_OPERATION_SECONDS):
        record = (await operations.records()).get(journey)
        if record is None:
            raise ApiError(404, "journey_not_found", f"journey {journey!r} is not deployed")
        counters, active = await operations.live_stats(journey)
    history = [
        {
            "version": int(v),
            "deployed_at": entry["deployed_at"],
            "operator": entry["operator"],
            "digest": entry["digest"],
            "path": entry["source"]["path"],
        }
        for v, entry in sorted(record["versions"].items(), key=lambda item: int(item[0]))
    ]
    current = record["versions"][str(record["current"])]["source"]
    return JourneyDetail(
        **_summary(record),
        yaml=current["text"],
        history=history,
        counters=counters,
        active_customers=active,
    )


async def _set_status(
    state: AppState, caller: ApiKey, journey: str, status: JourneyStatus
) -> JourneySummary:
    async with state.call(_OPERATION_SECONDS):
        record = await _operations(state, caller).set_status(journey, status)
    return JourneySummary(**_summary(record))


@router.post("/{journey}/pause", name="pause_journey", response_model=JourneySummary)
async def pause_journey(
    journey: str,
    state: Annotated[AppState, Depends(app_state)],
    caller: Annotated[ApiKey, Security(authorize)],
) -> JourneySummary:
    """Stop new entries and sends; instances wait where they are."""
    return await _set_status(state, caller, journey, "paused")


@router.post("/{journey}/resume", name="resume_journey", response_model=JourneySummary)
async def resume_journey(
    journey: str,
    state: Annotated[AppState, Depends(app_state)],
    caller: Annotated[ApiKey, Security(authorize)],
) -> JourneySummary:
    """Make a paused journey active again."""
    return await _set_status(state, caller, journey, "active")


@router.post("/{journey}/archive", name="archive_journey", response_model=JourneySummary)
async def archive_journey(
    journey: str,
    state: Annotated[AppState, Depends(app_state)],
    caller: Annotated[ApiKey, Security(authorize)],
) -> JourneySummary:
    """End the journey: no entries, every active instance ends now."""
    return await _set_status(state, caller, journey, "archived")


@router.post("/{journey}/rollback", name="rollback_journey", response_model=JourneySummary)
async def rollback_journey(
    journey: str,
    body: Rollback,
    state: Annotated[AppState, Depends(app_state)],
    caller: Annotated[ApiKey, Security(authorize)],
) -> JourneySummary:
    """Make an earlier version current for new entries."""
    async with state.call(_OPERATION_SECONDS):
        record = await _operations(state, caller).rollback(journey, body.version)
    return JourneySummary(**_summary(record))
