"""schemathesis against /openapi.json with an admin key: no 5xx, no answer off the schema."""

from __future__ import annotations

import asyncio
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.case import Case
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from orchestrator.infra.settings import Settings
from tests.api_harness import role_keys
from tests.api_server import api_server
from tests.audit_harness import fresh_database
from tests.runtime_harness import isolated_settings, prepare

EXAMPLES_PER_ROUTE = 20
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]


def _fuzz(url: str, key: str) -> list[str]:
    """Every operation's generated cases against the server; the failures, as text."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # raises on an invalid schema

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_ROUTE,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Case) -> None:  # type: ignore[type-arg]
            if case.operation.path.endswith("/inbox/stream"):
                # An SSE stream runs until the client leaves: bound it so the call returns.
                case.query = {**(case.query or {}), "max_seconds": 0.2}
            case.call_and_validate(
                base_url=url, headers={"Authorization": f"Bearer {key}"}, checks=CHECKS
            )

        try:
            check()
        except (AssertionError, BaseExceptionGroup) as exc:  # collected for every route
            failures.append(f"{operation.label}: {exc}")
    return failures


async def test_schemathesis_finds_no_server_error_or_schema_violation(
    infrastructure: Settings, tmp_path: Path
) -> None:
    # The audit routes need a migrated audit store: a database of this test's own.
    async with fresh_database(infrastructure) as database_url:
        settings = isolated_settings(infrastructure, database_url=database_url)
        await prepare(settings)
        keys = await role_keys(settings)
        async with api_server(settings, tmp_path / "api.log") as url:
            failures = await asyncio.to_thread(_fuzz, url, keys["admin"])
    assert not failures, "\n\n".join(failures)
