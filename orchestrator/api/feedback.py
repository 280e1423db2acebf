"""`/v1/feedback/teams` (operator): each team's share of routed feedback, its queue, its themes.

Reads the per-team view the feedback router keeps in Redis (`control/feedbackview.py`):
counts per team, the latest items per team (newest first) and theme counts per ISO week.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Security
from pydantic import BaseModel

from orchestrator.api.access import authorize
from orchestrator.api.errors import ApiError, error_responses
from orchestrator.api.state import AppState, app_state
from orchestrator.control.feedbackview import FeedbackView
from orchestrator.infra.names import TopicNames

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/feedback",
    tags=["feedback"],
    dependencies=[Security(authorize)],
    responses=error_responses({404: "No such team in the routing rules"}),
)


class TeamOut(BaseModel):
    team: str
    topic: str
    triage: bool
    items: int
    rerouted: int


class TeamsOut(BaseModel):
    """Every team of the rules; `routed_share` is the share not left in triage (0 to 1)."""

    teams: list[TeamOut]
    total: int
    routed: int
    in_triage: int
    routed_share: float | None


class ItemOut(BaseModel):
    item_id: str
    at: str
    source: str
    channel: str | None
    locale: str | None
    customer_id: str
    text: str
    rule: str | None
    keyword: str | None
    theme: str
    rerouted: bool
    timeline_url: str


class WeekOut(BaseModel):
    week: str
    themes: dict[str, int]


class TeamQueueOut(BaseModel):
    """A team's latest items (newest first) and its themes' counts per ISO week."""

    team: str
    topic: str
    triage: bool
    items: list[ItemOut]
    trend: list[WeekOut]


def _view(state: AppState) -> FeedbackView:
    return FeedbackView(state.redis, state.keys, TopicNames(state.settings.topic_prefix))


@router.get("/teams", name="feedback_teams", response_model=TeamsOut)
async def feedback_teams(state: Annotated[AppState, Depends(app_state)]) -> TeamsOut:
    """Counts per team and the share of feedback routed versus left in triage."""
    async with state.redis_call():
        teams = await _view(state).teams()
    total = sum(t.items for t in teams)
    in_triage = sum(t.items for t in teams if t.triage)
    return TeamsOut(
        teams=[TeamOut(**_fields(t)) for t in teams],
        total=total,
        routed=total - in_triage,
        in_triage=in_triage,
        routed_share=round((total - in_triage) / total, 4) if total else None,
    )


@router.get("/teams/{team}", name="feedback_team", response_model=TeamQueueOut)
async def feedback_team(
    team: str,
    state: Annotated[AppState, Depends(app_state)],
    limit: Annotated[int, Query(ge=1, le=500, description="latest items to list")] = 50,
) -> TeamQueueOut:
    """The team's queue (latest items with text, source, customer, timeline link) and trend."""
    async with state.redis_call():
        queue = await _view(state).team(team, limit)
    if queue is None:
        raise ApiError(
            404,
            "team_not_found",
            f"no team {team!r} in the routing rules: GET /v1/feedback/teams lists them",
        )
    return TeamQueueOut(
        team=queue.team,
        topic=queue.topic,
        triage=queue.triage,
        items=[ItemOut.model_validate(item) for item in queue.items],
        trend=[WeekOut(week=week, themes=themes) for week, themes in queue.trend.items()],
    )


def _fields(team: Any) -> dict[str, Any]:
    return {name: getattr(team, name) for name in TeamOut.model_fields}
