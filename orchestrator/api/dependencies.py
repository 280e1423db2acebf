"""`/v1/journeys/{journey}/dependencies` (operator): a journey's touch-point dependency map.

What each send step relies on (channels, providers, templates, link hosts), which steps are
single points of failure, and, live, each provider's circuit and the customers whose messages
are held at each step (`control.dependencies`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Security
from pydantic import BaseModel

from orchestrator.api.access import authorize
from orchestrator.api.errors import ApiError, error_responses
from orchestrator.api.state import AppState, app_state
from orchestrator.control.dependencies import live_dependencies

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/journeys",
    tags=["journeys"],
    dependencies=[Security(authorize)],
    responses=error_responses({404: "Journey not deployed"}),
)

_SECONDS = 30.0


class SendDependencyOut(BaseModel):
    step: str
    channels: list[str]
    providers: list[str]
    template: str
    link_hosts: list[str]
    single_point: str | None


class CircuitOut(BaseModel):
    state: str
    open_until: str | None = None


class HeldOut(BaseModel):
    step: str
    channel: str
    provider: str
    customers: int
    messages: int


class DependencyMap(BaseModel):
    """The current version's map; `held` lists messages waiting in the retry schedules."""

    journey: str
    version: int
    channels: list[str]
    providers: list[str]
    templates: list[str]
    link_hosts: list[str]
    sends: list[SendDependencyOut]
    single_points: list[str]
    circuits: dict[str, CircuitOut]
    held: list[HeldOut]


@router.get("/{journey}/dependencies", name="journey_dependencies", response_model=DependencyMap)
async def journey_dependencies(
    journey: str, state: Annotated[AppState, Depends(app_state)]
) -> DependencyMap:
    """The journey's dependency map with live circuits and customers held per step."""
    async with state.call(_SECONDS):
        live = await live_dependencies(state.operations, journey)
    if live is None:
        raise ApiError(404, "journey_not_found", f"journey {journey!r} is not deployed")
    return DependencyMap.model_validate(live.to_json())
