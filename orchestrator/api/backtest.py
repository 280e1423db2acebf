"""`POST /v1/journeys/backtest` (operator): what a draft would have sent, before deploying it.

The body is the deploy route's (a journey's YAML and its templates) plus an optional window
and sample; the answer is the report `orchestrator backtest --json` prints. The replay runs
in a worker thread with its own event loop, so a long window does not hold up other requests.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, Security
from pydantic import Field

from orchestrator.api.access import authorize
from orchestrator.api.errors import error_responses
from orchestrator.api.journeys import JourneyFile
from orchestrator.api.state import AppState, app_state
from orchestrator.backtest.comparison import run_backtest
from orchestrator.backtest.window import Selection, window_of
from orchestrator.infra.reach import kafka_failure

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/journeys",
    tags=["journeys"],
    dependencies=[Security(authorize)],
    responses=error_responses({400: "The window or sample is unusable"}),
)


class BacktestRequest(JourneyFile):
    """A draft journey, and which real events to replay it on (default: the last
    ORCHESTRATOR_BACKTEST_WINDOW)."""

    since: str | None = Field(None, description="a duration ending now, e.g. 7d")
    start: str | None = Field(None, alias="from", description="window start, ISO 8601")
    until: str | None = Field(None, description="window end, ISO 8601 (default: now)")
    customers: int | None = Field(None, ge=1, description="only this many customers")
    sample: float | None = Field(None, gt=0, le=1, description="only this fraction of them")


@router.post("/backtest", name="backtest_journey")
async def backtest_journey(
    body: BacktestRequest, state: Annotated[AppState, Depends(app_state)]
) -> dict[str, Any]:
    """Replay real events through the draft and the deployed version; the report side by
    side (entries, sends, suppressions, goals, exits, volume against limits, a sample of
    customers whose messages differ)."""
    settings = state.settings
    since = body.since if body.since or body.start else settings.backtest_window
    window = window_of(since, body.start, body.until)
    selection = Selection(body.customers, body.sample)
    try:
        report = await asyncio.to_thread(
            asyncio.run, run_backtest(settings, [body.source()], window, selection)
        )
    except KafkaError as exc:
        raise kafka_failure(settings.kafka_bootstrap, exc) from exc
    return report.to_json()
