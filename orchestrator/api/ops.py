"""Probes and metrics: `GET /healthz`, `GET /readyz`, `GET /metrics` (no key needed)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from orchestrator.api.encoding import OrjsonResponse
from orchestrator.api.state import AppState, app_state
from orchestrator.errors import OrchestratorError
from orchestrator.infra.reach import check_redis
from orchestrator.infra.topics import kafka_admin

__all__ = ["Readiness", "router"]

router = APIRouter(tags=["operations"])


class Readiness(BaseModel):
    """Which dependencies answered; `code`/`message` say which did not."""

    ready: bool
    kafka: bool
    redis: bool
    postgres: bool
    code: str | None = None
    message: str | None = None


@router.get("/healthz", name="healthz", summary="The process answers")
async def healthz() -> dict[str, str]:
    """200 while the process serves requests."""
    return {"status": "ok"}


async def _kafka(state: AppState) -> str | None:
    try:
        async with state.kafka_call(), kafka_admin(state.settings.kafka_bootstrap) as admin:
            await admin.list_topics()
    except (OrchestratorError, OSError) as exc:
        return str(exc)
    return None


async def _redis(state: AppState) -> str | None:
    try:
        await check_redis(state.settings)
    except OrchestratorError as exc:
        return str(exc)
    return None


@router.get(
    "/readyz",
    name="readyz",
    response_model=Readiness,
    responses={
        503: {"model": Readiness, "description": "Kafka, Redis or PostgreSQL is unreachable"}
    },
    summary="Kafka, Redis and PostgreSQL are reachable (else 503 naming which)",
)
async def readyz(state: Annotated[AppState, Depends(app_state)]) -> OrjsonResponse:
    """200 when all answer; 503 with `code` naming those that did not, joined by `_and_`
    (`kafka_unavailable`, `postgres_unavailable`, `redis_and_postgres_unavailable`...)."""
    # PostgreSQL too: the audit routes, erasure and exact counts cannot answer without it.
    kafka, redis, postgres = await asyncio.gather(
        _kafka(state), _redis(state), state.database.ping()
    )
    problems = (("kafka", kafka), ("redis", redis), ("postgres", postgres))
    down = [name for name, problem in problems if problem]
    body = Readiness(
        ready=not down, kafka=kafka is None, redis=redis is None, postgres=postgres is None
    )
    if down:
        body.code = "_and_".join(down) + "_unavailable"
        body.message = "; ".join(p for _, p in problems if p)
    return OrjsonResponse(body.model_dump(), status_code=503 if down else 200)


@router.get(
    "/metrics",
    name="metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
    summary="Prometheus metrics of this API process",
)
async def metrics(state: Annotated[AppState, Depends(app_state)]) -> Response:
    """Requests by route and status, latency histograms, events ingested and rejected, and
    the journey figures (read from the audit store at most every few seconds)."""
    await state.metrics.journeys.refresh(state.database.connection, state.personal)
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
