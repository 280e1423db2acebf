"""Journey routes: an invalid deploy's problems, one set of connections for the process, and
the step graph of each deployed version."""

from __future__ import annotations

import httpx
import pytest

from orchestrator.infra.settings import Settings
from tests.api_harness import api_client, bearer, role_keys
from tests.api_journeys import JOURNEY, JOURNEY_YAML, journey_file
from tests.ops_counting import OpenedConnections
from tests.runtime_harness import isolated_settings, prepare


async def test_an_invalid_deploy_answers_422_with_its_problems_located(
    infrastructure: Settings,
) -> None:
    settings = isolated_settings(infrastructure)
    await prepare(settings)
    keys = await role_keys(settings)
    # A step of no known kind, on line 8.
    body = {
        "yaml": JOURNEY_YAML + "  - id: odd\n    teleport: {}\n",
        "path": "broken.yaml",
        "templates": {},
    }
    async with api_client(settings) as client:
        deployed = await client.post("/v1/journeys", json=body, headers=bearer(keys["operator"]))
        validated = await client.post(
            "/v1/journeys/validate", json=body, headers=bearer(keys["operator"])
        )
        listed = await client.get("/v1/journeys", headers=bearer(keys["operator"]))

    assert deployed.status_code == 422, deployed.text
    answer = deployed.json()
    assert answer["code"] == "journey_invalid"
    assert "fix" in answer["message"]
    # The same problems, located the same way, as validate lists them.
    assert answer["problems"] == validated.json()["problems"]
    [problem] = answer["problems"]
    assert (problem["file"], problem["line"]) == ("broken.yaml", 8)
    assert "teleport" in problem["message"] and problem["message"] in answer["message"]
    assert listed.json() == []  # nothing was deployed


async def test_journey_calls_share_one_redis_client_and_one_producer(
    infrastructure: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = isolated_settings(infrastructure)
    await prepare(settings)
    keys = await role_keys(settings)
    opened = OpenedConnections(monkeypatch)
    operator = bearer(keys["operator"])
    async with api_client(settings) as client:
        await _deploy_two_versions(client, operator)
        paused = await client.post(f"/v1/journeys/{JOURNEY}/pause", headers=operator)
        shown = await client.get(f"/v1/journeys/{JOURNEY}", headers=operator)
        producers_while_up = [p._closed for p in opened.producers]

    assert paused.status_code == 200 and shown.status_code == 200
    assert shown.json()["versions"] == 2
    # Each action is recorded under the calling key, though one instance served them all.
    assert shown.json()["operator"].startswith("api:test operator:")
    assert [h["operator"] for h in shown.json()["history"]] == [shown.json()["operator"]] * 2
    assert (len(opened.redis), len(opened.producers)) == (1, 1)
    # One deploy-log reader for all five calls: each read on from where the last stopped,
    # and still saw the deploy made just before it (version 2, paused).
    assert len(opened.readers) == 1
    assert shown.json()["status"] == "paused"
    assert producers_while_up == [False]
    assert opened.producers[0]._closed, "the app's shutdown left the producer open"


async def test_the_graph_route_draws_each_deployed_version(infrastructure: Settings) -> None:
    settings = isolated_settings(infrastructure)
    await prepare(settings)
    keys = await role_keys(settings)
    operator = bearer(keys["operator"])
    async with api_client(settings) as client:
        await _deploy_two_versions(client, operator)
        current = await client.get(f"/v1/journeys/{JOURNEY}/graph", headers=operator)
        first = await client.get(f"/v1/journeys/{JOURNEY}/graph?version=1", headers=operator)
        missing = await client.get(f"/v1/journeys/{JOURNEY}/graph?version=9", headers=operator)
        unknown = await client.get("/v1/journeys/nope/graph", headers=operator)

    assert current.status_code == 200, current.text
    assert (current.json()["version"], first.json()["version"]) == (2, 1)
    graph = first.json()
    assert [(n["id"], n["kind"]) for n in graph["nodes"]] == [
        ("@entry", "trigger"),
        ("thank", "send"),
        ("@end", "end"),
    ]
    assert [(e["from"], e["to"]) for e in graph["edges"]] == [
        ("@entry", "thank"),
        ("thank", "@end"),
    ]
    assert graph["nodes"][0]["detail"] == "api.ordered"
    assert missing.status_code == 404
    assert missing.json()["code"] == "version_not_found"
    assert "use one of 1, 2" in missing.json()["message"]
    assert unknown.json()["code"] == "journey_not_found"


async def _deploy_two_versions(client: httpx.AsyncClient, operator: dict[str, str]) -> None:
    for marker in ("v1", "v2"):
        deployed = await client.post("/v1/journeys", json=journey_file(marker), headers=operator)
        assert deployed.status_code == 200, deployed.text
