"""Journey figures over HTTP (operator and admin): statistics, funnel, experiments.

Thin over `orchestrator.measure.figures`, which reads the tables the audit sink keeps
current; a journey without records reads as zeros. docs/measurement.md says what each
figure means and how it is computed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Security
from pydantic import BaseModel

from orchestrator.api.access import authorize
from orchestrator.api.errors import error_responses
from orchestrator.api.state import AppState, app_state
from orchestrator.measure import figures
from orchestrator.measure.figures import Experiments, Funnel, JourneyFigures, JourneySummary

__all__ = ["router"]

router = APIRouter(
    tags=["measure"],
    dependencies=[Security(authorize)],
    responses=error_responses({}),  # 401, 403, 422, 503: no error of their own
)

Version = Annotated[
    int | None, Query(ge=1, le=2**31 - 1, description="one version; all versions when absent")
]


class JourneyList(BaseModel):
    """Every journey with an instance, with its headline figures."""

    journeys: list[JourneySummary]


@router.get("/v1/measure/journeys", name="measure_journeys", response_model=JourneyList)
async def measure_journeys(state: Annotated[AppState, Depends(app_state)]) -> JourneyList:
    """Entered, active, goals and conversion rate of every journey."""
    async with state.database.connection() as conn:
        return JourneyList(journeys=await figures.journeys(conn))


@router.get("/v1/measure/journeys/{journey}", name="measure_journey", response_model=JourneyFigures)
async def measure_journey(
    journey: str, state: Annotated[AppState, Depends(app_state)], version: Version = None
) -> JourneyFigures:
    """Entries, exits, time to goal, each step and edge, messages and receipts of a journey."""
    async with state.database.connection() as conn:
        return await figures.journey_figures(conn, journey, version)


@router.get("/v1/measure/journeys/{journey}/funnel", name="measure_funnel", response_model=Funnel)
async def measure_funnel(
    journey: str, state: Annotated[AppState, Depends(app_state)], version: Version = None
) -> Funnel:
    """Each step's entries and their share of the journey's entries, in journey order."""
    async with state.database.connection() as conn:
        return await figures.funnel(conn, journey, version)


@router.get(
    "/v1/measure/journeys/{journey}/experiments",
    name="measure_experiments",
    response_model=Experiments,
)
async def measure_experiments(
    journey: str, state: Annotated[AppState, Depends(app_state)], version: Version = None
) -> Experiments:
    """Each split's arms against the control: rates, difference, 95% interval, p-value."""
    async with state.database.connection() as conn:
        found = await figures.experiments(conn, journey, version)
    return figures.experiments_json(journey, version, found)
