"""The API application: routers, error handlers, body limit, metrics, and its lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from orchestrator.api import (
    audit,
    backtest,
    customers,
    dashboard,
    dependencies,
    events,
    feedback,
    inbox,
    journeys,
    keys,
    measure,
    ops,
    segment,
    surveys,
    tasks,
    tracking,
    webhooks,
)
from orchestrator.api.encoding import OrjsonResponse
from orchestrator.api.errors import install_error_handlers
from orchestrator.api.limits import BodyLimitMiddleware
from orchestrator.api.metrics import MetricsMiddleware
from orchestrator.api.state import AppState
from orchestrator.infra.settings import Settings

__all__ = ["ROUTERS", "create_app"]

# One router per resource; the tests enumerate their routes against `access.ACCESS`.
ROUTERS = (
    *(
        m.router
        for m in (
            ops,
            events,
            segment,
            journeys,
            backtest,
            dependencies,
            feedback,
            customers,
            inbox,
            audit,
            measure,
            keys,
            webhooks,
            dashboard,
            tasks,
            tracking,
        )
    ),
    surveys.router,
    surveys.answer_router,
)

_DESCRIPTION = """\
Send customer events (our format or Segment's), run journeys, read customers' state and
query, export, verify and erase in the audit store, read journey figures and experiments.
A live dashboard is served at `/ui`.
Authenticate with `Authorization: Bearer KEY` (or basic auth, the key as username).
Every error is `{"code", "message"}`.
"""


def create_app(settings: Settings) -> FastAPI:
    """An API app for `settings`; its clients start with the app's lifespan."""
    state = AppState(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.orchestrator = state
        try:
            async with state.operations:
                yield
        finally:
            await state.close()

    app = FastAPI(
        title="Orchestrator API",
        version="1",
        description=_DESCRIPTION,
        default_response_class=OrjsonResponse,
        lifespan=lifespan,
    )
    for router in ROUTERS:
        app.include_router(router)
    install_error_handlers(app)
    # Outermost first: metrics see every answer, the 413 included.
    app.add_middleware(BodyLimitMiddleware, limit=settings.api_max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    return app
