"""Every error answered as JSON `{"code", "message"}`: typed errors, HTTP errors, validation.

Codes are stable (clients branch on them); messages say what to do. The handlers here are
the only place an exception becomes a response.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from orchestrator.api.encoding import OrjsonResponse
from orchestrator.audit.db import DatabaseUnavailableError
from orchestrator.audit.query import AuditQueryError
from orchestrator.backtest.window import BacktestInputError
from orchestrator.control.keys import InvalidRoleError, UnknownKeyError
from orchestrator.control.operations import OperationInProgressError, UnknownJourneyError
from orchestrator.errors import (
    ConfigurationError,
    DependencyUnavailableError,
    EventValidationError,
    JourneyValidationError,
    OrchestratorError,
)

__all__ = [
    "ERROR_RESPONSES",
    "ApiError",
    "ErrorBody",
    "JourneyInvalidBody",
    "ProblemOut",
    "error_responses",
    "install_error_handlers",
]

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    """What every error response holds."""

    code: str
    message: str


class ProblemOut(BaseModel):
    """One problem of a journey file, located as the CLI prints it (1-based line and column)."""

    file: str
    line: int
    col: int
    message: str


class JourneyInvalidBody(ErrorBody):
    """422 `journey_invalid`: the usual code and message, and every problem located."""

    problems: list[ProblemOut] = []


class ApiError(OrchestratorError):
    """An error with its HTTP status and stable code, raised by routes and dependencies."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        self.status = status
        self.code = code
        self.headers = headers
        super().__init__(message)


# Status codes of HTTP errors raised by the framework itself (no route matched, wrong method).
_HTTP_CODES = {
    400: ("bad_request", "the request is malformed"),
    401: ("unauthenticated", "send an API key as `Authorization: Bearer KEY`"),
    403: ("forbidden", "this key's role may not call this route"),
    404: ("not_found", "no such route: see /docs for the routes"),
    405: ("method_not_allowed", "this route does not take this method: see /docs"),
    413: ("body_too_large", "the request body is too large"),
}

# (typed error, status, code): the service layer's errors as HTTP answers.
_TYPED: list[tuple[type[OrchestratorError], int, str]] = [
    (UnknownJourneyError, 404, "journey_not_found"),
    (UnknownKeyError, 404, "key_not_found"),
    (InvalidRoleError, 422, "invalid_role"),
    (JourneyValidationError, 422, "journey_invalid"),
    (EventValidationError, 400, "event_invalid"),
    (OperationInProgressError, 409, "operation_in_progress"),
    (DependencyUnavailableError, 503, "dependency_unavailable"),
    (DatabaseUnavailableError, 503, "dependency_unavailable"),
    (AuditQueryError, 400, "invalid_cursor"),
    (BacktestInputError, 400, "backtest_invalid"),
    # The audit store's schema is older than this program (`orchestrator db upgrade`).
    (ConfigurationError, 503, "audit_store_not_ready"),
]

# Declared on every route so the OpenAPI document lists what a client may get back.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "Malformed request"),
        (401, "No key, or an unknown or revoked key"),
        (403, "The key's role may not call this route"),
        (413, "Request body over ORCHESTRATOR_API_MAX_BODY_BYTES"),
        (422, "The request does not match the schema"),
        (503, "Kafka, Redis or PostgreSQL is unreachable; try again later"),
    )
}


def error_responses(extra: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """`ERROR_RESPONSES` plus a router's own, e.g. `{404: "Journey not deployed"}`."""
    more: dict[int | str, dict[str, Any]] = {
        status: {"model": ErrorBody, "description": text} for status, text in extra.items()
    }
    return {**ERROR_RESPONSES, **more}


def _answer(status: int, code: str, message: str, headers: Any = None) -> OrjsonResponse:
    return OrjsonResponse({"code": code, "message": message}, status_code=status, headers=headers)


async def _api_error(request: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, ApiError)
    return _answer(exc.status, exc.code, str(exc), exc.headers)


async def _http_error(request: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, StarletteHTTPException)
    code, default = _HTTP_CODES.get(exc.status_code, (f"http_{exc.status_code}", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) and exc.status_code != 404 else default
    if exc.status_code == 405:
        detail = default
    return _answer(exc.status_code, code, detail, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, RequestValidationError)
    reasons = "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
    )
    return _answer(422, "invalid_request", f"{reasons}: fix the request (see /docs)")


async def _journey_invalid(request: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, JourneyValidationError)
    count = len(exc.problems)
    body = JourneyInvalidBody(
        code="journey_invalid",
        message=f"the journey has {count} problem{'s' if count != 1 else ''} (see `problems`): "
        f"fix {'them' if count != 1 else 'it'} and deploy again; first: {exc.problems[0]}",
        problems=[
            ProblemOut(file=p.file, line=p.line, col=p.col, message=p.message) for p in exc.problems
        ],
    )
    return OrjsonResponse(body.model_dump(), status_code=422)


async def _typed_error(request: Request, exc: Exception) -> OrjsonResponse:
    for kind, status, code in _TYPED:
        if isinstance(exc, kind):
            headers = {"Retry-After": "5"} if status == 503 else None
            return _answer(status, code, str(exc), headers)
    log.warning("unmapped error on %s: %s", request.url.path, exc)
    return _answer(500, "internal", f"{exc}")


async def _unexpected(request: Request, exc: Exception) -> OrjsonResponse:
    log.exception("unexpected error on %s", request.url.path, exc_info=exc)
    return _answer(500, "internal", "unexpected server error; the API's log has the details")


def install_error_handlers(app: FastAPI) -> None:
    """Make every error a `{"code", "message"}` JSON answer."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    # Starlette picks the most specific class: this wins over OrchestratorError's handler.
    app.add_exception_handler(JourneyValidationError, _journey_invalid)
    app.add_exception_handler(OrchestratorError, _typed_error)
    app.add_exception_handler(Exception, _unexpected)
