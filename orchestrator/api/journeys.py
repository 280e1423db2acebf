"""`/v1/journeys` (operator): validate, deploy, list, show, graph, pause, resume, rollback,
archive.

Thin over `control.operations.JourneyOperations`, the service the CLI also calls: one
instance per process (`AppState.operations`), each action recorded under the caller's key.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Security
from pydantic import BaseModel, Field

from orchestrator.api.access import authorize
from orchestrator.api.errors import ApiError, JourneyInvalidBody, ProblemOut, error_responses
from orchestrator.api.state import AppState, app_state
from orchestrator.audit.counts import journey_counts
from orchestrator.control.keys import ApiKey
from orchestrator.engine.catalog import JourneyStatus
from orchestrator.journey.loader import compile_source, validate_sources
from orchestrator.journey.source import JourneySource, TemplateSource
from orchestrator.journey.stepgraph import step_graph

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/journeys",
    tags=["journeys"],
    dependencies=[Security(authorize)],
    responses=error_responses(
        {404: "Journey not deployed", 409: "Another operator action is running"}
    ),
)

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


class ExactCounts(BaseModel):
    """`?exact=true`: counts from the audit store (each record once; lags the live ones)."""

    entered: int
    sent: dict[str, int]
    suppressed: dict[str, int]
    exited: dict[str, int]


class JourneyDetail(JourneySummary):
    """A deployed journey: versions, the current YAML, live counters."""

    yaml: str
    history: list[dict[str, Any]]
    counters: dict[str, int]
    active_customers: int
    exact: ExactCounts | None = None


class Rollback(BaseModel):
    """Which version to make current again (default: the one before the current)."""

    version: int | None = Field(None, ge=1)


def _operator(state: AppState, caller: ApiKey) -> str:
    return state.operator_name(caller.name, caller.key_id)


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


@router.post(
    "",
    name="deploy_journey",
    response_model=Deployed,
    responses={422: {"model": JourneyInvalidBody, "description": "The journey is invalid"}},
)
async def deploy_journey(
    body: JourneyFile,
    state: Annotated[AppState, Depends(app_state)],
    caller: Annotated[ApiKey, Security(authorize)],
) -> Deployed:
    """Validate and deploy; a new version only when the content changed.

    An invalid journey is refused with 422 `journey_invalid`, its `problems` located as
    `/v1/journeys/validate` lists them.
    """
    async with state.call(_OPERATION_SECONDS):
        [outcome] = await state.operations.deploy([body.source()], _operator(state, caller))
    return Deployed(journey=outcome.journey, version=outcome.version, changed=outcome.changed)


@router.get("", name="list_journeys", response_model=list[JourneySummary])
async def list_journeys(state: Annotated[AppState, Depends(app_state)]) -> list[JourneySummary]:
    """Every deployed journey with its status and current version."""
    async with state.call(_OPERATION_SECONDS):
        records = await state.operations.records()
    return [JourneySummary(**_summary(records[j])) for j in sorted(records)]


@router.get("/{journey}", name="show_journey", response_model=JourneyDetail)
async def show_journey(
    journey: str, state: Annotated[AppState, Depends(app_state)], exact: bool = False
) -> JourneyDetail:
    """One journey: its versions, the current version's YAML and live (at-least-once)
    counters; with `exact=true` also the audit store's exact counts."""
    operations = state.operations
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
        exact=await _exact(state, journey) if exact else None,
    )


class GraphNodeOut(BaseModel):
    """A step (`kind` is the step's kind), or the `@entry`, `@end` or `@holdout:STEP` node."""

    id: str
    kind: str
    label: str
    detail: str


class GraphEdgeOut(BaseModel):
    """A way from one node to another; `label` says what takes it."""

    source: str = Field(alias="from")
    target: str = Field(alias="to")
    label: str


class GraphExitOut(BaseModel):
    """An exit rule: it ends an instance at any step."""

    event: str
    goal: bool
    when: str | None


class JourneyGraph(BaseModel):
    """A deployed version's steps as a graph, generated from its YAML."""

    journey: str
    version: int
    name: str
    nodes: list[GraphNodeOut]
    edges: list[GraphEdgeOut]
    exits: list[GraphExitOut]
    max_duration_seconds: float | None


@router.get(
    "/{journey}/graph",
    name="journey_graph",
    response_model=JourneyGraph,
    response_model_by_alias=True,
)
async def journey_graph(
    journey: str,
    state: Annotated[AppState, Depends(app_state)],
    version: Annotated[int | None, Query(ge=1)] = None,
) -> JourneyGraph:
    """The steps of a deployed version (default: the current one) as nodes and edges, for
    drawing; the measured counts (`/v1/measure/journeys/{journey}`) use the same step ids."""
    async with state.call(_OPERATION_SECONDS):
        record = (await state.operations.deploy_records()).get(journey)
    if record is None:
        raise ApiError(404, "journey_not_found", f"journey {journey!r} is not deployed")
    number = record.current if version is None else version
    entry = record.versions.get(str(number))
    if entry is None:
        deployed = ", ".join(str(v) for v in record.version_numbers())
        raise ApiError(
            404,
            "version_not_found",
            f"journey {journey!r} has no version {number}: use one of {deployed}",
        )
    graph = step_graph(compile_source(entry.source.to_source(), number))
    return JourneyGraph.model_validate(graph.to_json())


async def _exact(state: AppState, journey: str) -> ExactCounts:
    async with state.database.connection() as conn:
        counts = await journey_counts(conn, journey)
    return ExactCounts(**counts.to_dict())


async def _set_status(
    state: AppState, caller: ApiKey, journey: str, status: JourneyStatus
) -> JourneySummary:
    async with state.call(_OPERATION_SECONDS):
        record = await state.operations.set_status(journey, status, _operator(state, caller))
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
        record = await state.operations.rollback(journey, body.version, _operator(state, caller))
    return JourneySummary(**_summary(record))
