"""Route x role matrix: every route answers exactly its declared 2xx, 401 or 403, never 500."""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute

from orchestrator import jsonwire
from orchestrator.api.access import ACCESS, PUBLIC
from orchestrator.api.app import ROUTERS
from orchestrator.control.feedbackview import FeedbackView
from orchestrator.control.inbox import Inbox, InboxMessage
from orchestrator.control.keys import KeyStore
from orchestrator.engine.state import CustomerState
from orchestrator.infra.names import RedisKeys, TopicNames
from orchestrator.infra.settings import Settings
from tests.api_harness import api_client, bearer, role_keys
from tests.api_journeys import JOURNEY, journey_file
from tests.audit_harness import fresh_database
from tests.runtime_harness import isolated_settings, prepare, redis_client

CUSTOMER = "c-matrix"
EVENT = {
    "event_id": "matrix-1",
    "customer_id": CUSTOMER,
    "name": "matrix.ping",
    "occurred_at": "2026-05-01T09:30:00Z",
}
TRACK = {"type": "track", "userId": CUSTOMER, "event": "Matrix Ping", "messageId": "m-1"}

# Route name -> (method, path, JSON body, status on success). Archive comes last: the
# journey routes before it need the journey live. `{key}` is a throwaway key's id.
SAMPLES: dict[str, tuple[str, str, Any, int]] = {
    "ingest_events": ("POST", "/v1/events", EVENT, 202),
    "segment_track": ("POST", "/v1/track", TRACK, 200),
    "segment_identify": (
        "POST",
        "/v1/identify",
        {"userId": CUSTOMER, "traits": {"plan": "pro"}, "messageId": "m-2"},
        200,
    ),
    "segment_batch": ("POST", "/v1/batch", {"batch": [TRACK]}, 200),
    "validate_journey": ("POST", "/v1/journeys/validate", journey_file(), 200),
    "deploy_journey": ("POST", "/v1/journeys", journey_file("v2"), 200),
    "list_journeys": ("GET", "/v1/journeys", None, 200),
    "show_journey": ("GET", f"/v1/journeys/{JOURNEY}", None, 200),
    "journey_graph": ("GET", f"/v1/journeys/{JOURNEY}/graph", None, 200),
    "pause_journey": ("POST", f"/v1/journeys/{JOURNEY}/pause", None, 200),
    "resume_journey": ("POST", f"/v1/journeys/{JOURNEY}/resume", None, 200),
    "rollback_journey": ("POST", f"/v1/journeys/{JOURNEY}/rollback", {"version": 1}, 200),
    "journey_dependencies": ("GET", f"/v1/journeys/{JOURNEY}/dependencies", None, 200),
    "backtest_journey": ("POST", "/v1/journeys/backtest", {**journey_file(), "since": "1h"}, 200),
    "feedback_teams": ("GET", "/v1/feedback/teams", None, 200),
    "feedback_team": ("GET", "/v1/feedback/teams/billing", None, 200),
    "customer_journeys": ("GET", f"/v1/customers/{CUSTOMER}/journeys", None, 200),
    "customer_data": ("GET", f"/v1/customers/{CUSTOMER}", None, 200),
    "audit_records": ("GET", f"/v1/audit/records?customer={CUSTOMER}&order=newest", None, 200),
    "customer_timeline": ("GET", f"/v1/customers/{CUSTOMER}/timeline", None, 200),
    "audit_export": ("GET", "/v1/audit/export?format=csv", None, 200),
    "audit_verify": ("POST", "/v1/audit/verify", {"customer": CUSTOMER}, 200),
    "list_inbox": ("GET", f"/v1/customers/{CUSTOMER}/inbox", None, 200),
    "read_inbox_message": ("POST", f"/v1/customers/{CUSTOMER}/inbox/m-inbox/read", None, 200),
    # Bounded, so the in-process transport (which reads whole bodies) gets an end.
    "inbox_stream": ("GET", f"/v1/customers/{CUSTOMER}/inbox/stream?max_seconds=0.1", None, 200),
    "answer_inbox_survey": (
        "POST",
        f"/v1/customers/{CUSTOMER}/inbox/m-survey/answer",
        {"score": 9},
        202,
    ),
    "survey_figures": ("GET", "/v1/measure/surveys", None, 200),
    # Another customer: erasing this one would empty the customer routes above.
    "erase_customer": ("POST", "/v1/customers/c-matrix-erased/erase", None, 200),
    # A dry run: what a retention would drop, nothing dropped.
    "audit_retention": (
        "POST",
        "/v1/audit/retention",
        {"older_than": "3650d", "dry_run": True},
        200,
    ),
    "measure_journeys": ("GET", "/v1/measure/journeys", None, 200),
    "measure_journey": ("GET", f"/v1/measure/journeys/{JOURNEY}?version=1", None, 200),
    "measure_funnel": ("GET", f"/v1/measure/journeys/{JOURNEY}/funnel", None, 200),
    "measure_experiments": ("GET", f"/v1/measure/journeys/{JOURNEY}/experiments", None, 200),
    "measure_tasks": ("GET", "/v1/measure/tasks", None, 200),
    "list_keys": ("GET", "/v1/keys", None, 200),
    "create_key": ("POST", "/v1/keys", {"role": "publisher", "name": "matrix"}, 201),
    "revoke_key": ("DELETE", "/v1/keys/{key}", None, 200),
    "archive_journey": ("POST", f"/v1/journeys/{JOURNEY}/archive", None, 200),
}
CALLERS = ("none", "wrong", "revoked", "publisher", "operator", "auditor", "admin")


def test_every_route_is_declared_once_in_the_table() -> None:
    names = {r.name for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)}
    assert names == set(ACCESS) | PUBLIC
    assert set(SAMPLES) == set(ACCESS)


async def test_route_role_matrix(infrastructure: Settings) -> None:
    async with fresh_database(infrastructure) as url:
        await _matrix(isolated_settings(infrastructure, database_url=url))


async def _matrix(settings: Settings) -> None:
    await prepare(settings)
    keys = await role_keys(settings)
    async with redis_client(settings) as redis:
        await redis.hset(
            RedisKeys(settings.redis_prefix).customer(CUSTOMER),
            "state",
            jsonwire.dumps(CustomerState(CUSTOMER, profile={"plan": "pro"}).to_wire()),
        )
        inbox = Inbox(redis, RedisKeys(settings.redis_prefix), 10)
        await inbox.add(
            CUSTOMER, InboxMessage("m-inbox", "Hi", "Welcome", "2026-05-01T09:30:00Z"), 1
        )
        survey = InboxMessage("m-survey", "Q", "0-10?", "2026-05-01T09:31:00Z", survey="nps")
        await inbox.add(CUSTOMER, survey, 2)
        await FeedbackView(
            redis, RedisKeys(settings.redis_prefix), TopicNames(settings.topic_prefix)
        ).register_teams(["billing", "triage"], "triage")
        throwaway, _ = await KeyStore(redis, RedisKeys(settings.redis_prefix)).create(
            "publisher", "to revoke", "2026-01-01T00:00:00Z"
        )
    seen: dict[tuple[str, str], int] = {}
    async with api_client(settings) as client:
        await client.post("/v1/journeys", json=journey_file("v1"), headers=bearer(keys["admin"]))
        for route, (method, path, body, _) in SAMPLES.items():
            for caller in CALLERS:
                headers = {} if caller == "none" else bearer(keys[caller])
                response = await client.request(
                    method, path.format(key=throwaway.key_id), json=body, headers=headers
                )
                seen[route, caller] = response.status_code
                if response.status_code >= 400:
                    assert set(response.json()) == {"code", "message"}, response.text
    expected = {
        (route, caller): (
            401
            if caller in ("none", "wrong", "revoked")
            else SAMPLES[route][3]
            if caller in ACCESS[route]
            else 403
        )
        for route in SAMPLES
        for caller in CALLERS
    }
    wrong = {cell: (seen[cell], want) for cell, want in expected.items() if seen[cell] != want}
    assert not wrong, f"(route, caller): (got, expected): {wrong}"


async def test_basic_auth_with_the_key_as_username(infrastructure: Settings) -> None:
    settings = isolated_settings(infrastructure)
    await prepare(settings)
    keys = await role_keys(settings)
    async with api_client(settings) as client:
        good = await client.post("/v1/track", json=TRACK, auth=(keys["publisher"], ""))
        bad = await client.post("/v1/track", json=TRACK, auth=(keys["wrong"], ""))
    assert good.status_code == 200 and good.json() == {"success": True}
    assert bad.status_code == 401 and bad.json()["code"] == "unauthenticated"
