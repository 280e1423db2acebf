"""Who may call what: the one route table, and the dependency that enforces it.

A request authenticates with `Authorization: Bearer KEY`, or HTTP basic auth whose username
is the key and whose password is empty (how Segment SDKs send their write key). Each route
is named in `ACCESS` with the roles it admits; a route missing from both `ACCESS` and
`PUBLIC` is refused to everyone (and the tests fail), so none is open by accident.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPBasic, HTTPBearer

from orchestrator.api.errors import ApiError
from orchestrator.api.state import AppState, app_state
from orchestrator.control.keys import ApiKey, Role

__all__ = ["ACCESS", "PUBLIC", "authorize"]

_PUBLISH: frozenset[Role] = frozenset({"publisher", "admin"})
_OPERATE: frozenset[Role] = frozenset({"operator", "admin"})
_AUDIT: frozenset[Role] = frozenset({"auditor", "admin"})

# Route name -> roles admitted. Admin is admitted everywhere: it can mint any key anyway.
ACCESS: dict[str, frozenset[Role]] = {
    "ingest_events": _PUBLISH,
    "segment_track": _PUBLISH,
    "segment_identify": _PUBLISH,
    "segment_batch": _PUBLISH,
    "validate_journey": _OPERATE,
    "deploy_journey": _OPERATE,
    "list_journeys": _OPERATE,
    "show_journey": _OPERATE,
    "journey_graph": _OPERATE,
    "pause_journey": _OPERATE,
    "resume_journey": _OPERATE,
    "archive_journey": _OPERATE,
    "rollback_journey": _OPERATE,
    "journey_dependencies": _OPERATE,
    "backtest_journey": _OPERATE,
    "feedback_teams": _OPERATE,
    "feedback_team": _OPERATE,
    "customer_journeys": frozenset({"operator", "auditor", "admin"}),
    # Operators see personal fields masked unless their key has the `pii` grant.
    "customer_data": frozenset({"operator", "auditor", "admin"}),
    "audit_records": frozenset({"operator", "auditor", "admin"}),
    # Whole timelines, exports and verification are the auditor's work.
    "customer_timeline": _AUDIT,
    "audit_export": _AUDIT,
    "audit_verify": _AUDIT,
    "erase_customer": frozenset({"admin"}),
    "audit_retention": frozenset({"admin"}),
    # The in_app inbox is the channel app's to show (its backend holds a publisher key);
    # operators may list it for support, but reading and streaming are the app's.
    "list_inbox": frozenset({"publisher", "operator", "admin"}),
    "read_inbox_message": _PUBLISH,
    "inbox_stream": _PUBLISH,
    # The in-app survey widget answers through the app's backend, as it reads the inbox.
    "answer_inbox_survey": _PUBLISH,
    "survey_figures": _OPERATE,
    # Journey figures: counts, no customer data.
    "measure_journeys": _OPERATE,
    "measure_journey": _OPERATE,
    "measure_funnel": _OPERATE,
    "measure_experiments": _OPERATE,
    "measure_tasks": _OPERATE,
    "list_keys": frozenset({"admin"}),
    "create_key": frozenset({"admin"}),
    "revoke_key": frozenset({"admin"}),
}
# Routes anyone may call: probes and the scrape endpoint; the dashboard's static files
# (its data comes through the routes above, with the user's key); and the webhooks in, which no
# API key could reach us with: each is verified by its sender's signature instead
# (`X-Twilio-Signature`, the unsubscribe and survey links' HMACs; see api/webhooks.py and
# api/surveys.py); and tracked links and the open pixel, which mail clients fetch, signed by
# their token (api/tracking.py).
PUBLIC = frozenset(
    {
        "healthz",
        "readyz",
        "metrics",
        "dashboard",
        "dashboard_asset",
        "twilio_status",
        "twilio_inbound",
        "unsubscribe_one_click",
        # A survey email's links: each carries its own HMAC (see api/surveys.py).
        "survey_link_answer",
        "survey_link_comment",
        "track_click",
        "track_open",
    }
)

# Declared so the OpenAPI document (and /docs) offers both ways in; parsed below.
_bearer = HTTPBearer(auto_error=False, description="an API key")
_basic = HTTPBasic(auto_error=False, description="username: an API key; password: empty")

_CHALLENGE = {"WWW-Authenticate": 'Bearer, Basic realm="orchestrator"'}


def _secret(header: str) -> str | None:
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, _, _password = decoded.partition(":")
        return user or None
    return None


def _unauthenticated(message: str) -> ApiError:
    return ApiError(401, "unauthenticated", message, _CHALLENGE)


async def authorize(
    request: Request,
    state: Annotated[AppState, Depends(app_state)],
    _b: Annotated[object, Security(_bearer)] = None,
    _u: Annotated[object, Security(_basic)] = None,
) -> ApiKey:
    """The caller's key, if it is live and its role may call this route; else 401/403."""
    header = request.headers.get("authorization")
    if not header:
        raise _unauthenticated("no API key: send `Authorization: Bearer KEY`")
    secret = _secret(header)
    if secret is None:
        raise _unauthenticated(
            "the Authorization header is neither `Bearer KEY` nor basic auth with the key "
            "as username"
        )
    async with state.redis_call():
        key = await state.key_store.authenticate(secret)
    if key is None:
        raise _unauthenticated("the API key is unknown or revoked: ask an admin for a key")
    route = request.scope.get("route")
    roles = ACCESS.get(getattr(route, "name", ""), frozenset())
    if key.role not in roles:
        allowed = ", ".join(sorted(roles)) or "no role"
        raise ApiError(
            403,
            "forbidden",
            f"the key {key.key_id} has role {key.role}, which may not call this route "
            f"(it admits {allowed}): use a key with one of those roles",
        )
    return key
