"""The dashboard's other views in a real browser (see tests/test_dashboard.py): feedback per
team, the dependency map on the journey's graph while a provider is down, and "deploy a
change" (a draft backtested before its deploy can be confirmed). Each page must show the
API's own numbers and log no console error. Screenshots go to `test-artifacts/`.
"""

from __future__ import annotations

from typing import Any

import httpx
from playwright.async_api import FilePayload, Page

from orchestrator.contracts.events import EventRecord
from orchestrator.control.feedbackview import FeedbackView
from orchestrator.control.operations import JourneyOperations
from orchestrator.dev.standins.twilio import TwilioStandIn
from orchestrator.feedback.items import feedback_of, routed_record
from orchestrator.infra.names import RedisKeys, TopicNames
from orchestrator.infra.settings import Settings
from orchestrator.journey.routing import compile_routing
from orchestrator.measure.registry import projections
from tests.api_harness import bearer, role_keys
from tests.api_server import api_server
from tests.audit_harness import fresh_database, running_sink
from tests.connector_harness import connector_settings, running_connectors, running_twilio
from tests.dashboard_browser import BROWSER_WAIT_MS, artifacts_dir, browser_page, sign_in
from tests.runtime_harness import (
    isolated_settings,
    make_event,
    prepare,
    publish,
    redis_client,
    running_worker,
    wait_until,
)
from tests.test_dependencies import NOTIFY, publish_sign_ups
from tests.test_feedback_api import RULES

# (when, customer, source event, text): three weeks, each team, one left in triage.
FEEDBACK = [
    ("2026-04-21T10:00:00Z", "cus-ann", "survey.answered", "I want a refund"),
    ("2026-04-28T10:00:00Z", "cus-bob", "survey.answered", "I was charged twice"),
    ("2026-04-29T09:00:00Z", "cus-cid", "app.review", "the parcel was left in the rain"),
    ("2026-05-05T10:00:00Z", "cus-dee", "survey.answered", "refund, again please"),
    ("2026-05-05T11:00:00Z", "cus-eve", "app.review", "where is my parcel"),
    ("2026-05-06T11:00:00Z", "cus-fay", "survey.answered", "charged twice for one order"),
    ("2026-05-06T12:00:00Z", "cus-gus", "survey.answered", "lovely colours"),
]


def _properties(name: str, text: str) -> dict[str, Any]:
    return {"comment": text} if name == "survey.answered" else {"text": text, "rating": 2}


async def _route_feedback(settings: Settings) -> None:
    """Route each item by the rules into the per-team view, as the feedback router does."""
    table = compile_routing("rules.yaml", RULES)
    async with redis_client(settings) as redis:
        view = FeedbackView(
            redis, RedisKeys(settings.redis_prefix), TopicNames(settings.topic_prefix)
        )
        await view.register_teams(list(table.teams), table.triage)
        for i, (at, customer, name, text) in enumerate(FEEDBACK):
            event = EventRecord(
                event_id=f"fb-{i}",
                customer_id=customer,
                name=name,
                occurred_at=at,
                properties=_properties(name, text),
            )
            item = feedback_of(event)
            assert item is not None, text
            record = routed_record(event, item, table.route(item), table, settings.public_url)
            assert await view.record(record, queue_max=50)


async def test_the_feedback_page_shows_each_team_its_queue_and_themes(
    infrastructure: Settings,
) -> None:
    settings = isolated_settings(infrastructure).model_copy(
        update={"public_url": "https://api.northwind.example"}
    )
    await prepare(settings)
    keys = await role_keys(settings)
    await _route_feedback(settings)
    artifacts = artifacts_dir()
    problems: list[str] = []
    async with (
        api_server(settings, artifacts / "dashboard-feedback-api.log") as base,
        httpx.AsyncClient(base_url=base, headers=bearer(keys["operator"])) as api,
    ):
        teams = (await api.get("/v1/feedback/teams")).json()
        billing = (await api.get("/v1/feedback/teams/billing?limit=50")).json()
        async with browser_page(problems) as (_, page):
            # Straight to the view: the journeys view needs the audit store, not run here.
            await sign_in(page, base, keys["operator"], "#/feedback")
            await page.wait_for_selector("#feedback-teams tr[data-team]", timeout=BROWSER_WAIT_MS)
            assert await page.inner_text("#feedback-total") == str(teams["total"]) == "7"
            assert await page.inner_text("#feedback-routed") == str(teams["routed"])
            assert await page.inner_text("#feedback-triage") == str(teams["in_triage"]) == "1"
            share = f"{teams['routed_share'] * 100:.1f}%"
            assert await page.inner_text("#feedback-share") == share
            rows = await page.eval_on_selector_all(
                "#feedback-teams tr[data-team]",
                "els => els.map(e => [e.dataset.team, e.querySelector('td.n').textContent])",
            )
            assert rows == [[t["team"], str(t["items"])] for t in teams["teams"]]

            await page.click('#feedback-teams a[href="#/feedback/billing"]')
            await page.wait_for_selector("#feedback-team .queue li", timeout=BROWSER_WAIT_MS)
            queue = await page.eval_on_selector_all(
                "#feedback-team .queue li",
                """els => els.map(e => [e.dataset.item, e.querySelector('q').textContent,
                    e.querySelector('a.customer').textContent,
                    e.querySelector('a.customer').getAttribute('href')])""",
            )
            assert queue == [
                [i["item_id"], i["text"], i["customer_id"], i["timeline_url"]]
                for i in billing["items"]
            ]
            assert (
                queue[0][3]
                == "https://api.northwind.example/v1/audit/records?customer=cus-fay&order=newest"
            )
            trend = await page.eval_on_selector_all(
                "#feedback-team tr[data-theme]",
                "els => [...els].map(e => [e.dataset.theme,"
                " [...e.querySelectorAll('td.n')].map(td => td.textContent)])",
            )
            weeks = [w["week"] for w in billing["trend"]]
            assert weeks == ["2026-W17", "2026-W18", "2026-W19"]
            expected = {
                theme: [str(w["themes"].get(theme, 0)) for w in billing["trend"]]
                for w in billing["trend"]
                for theme in w["themes"]
            }
            assert {theme: counts[:-1] for theme, counts in trend} == expected
            assert await page.is_visible("#feedback-team .chart canvas")
            await page.screenshot(path=str(artifacts / "dashboard-feedback.png"), full_page=True)

            # A team the rules do not have: the API's 404 on the page, not a blank panel.
            await page.goto(f"{base}/ui#/feedback/legal")
            await page.wait_for_selector("#feedback-team p.error", timeout=BROWSER_WAIT_MS)
            assert "team_not_found" in await page.inner_text("#feedback-team p.error")
    # The 404 of the unknown team is the one console error expected.
    assert [p for p in problems if "404" not in p] == []


async def test_the_journey_graph_shows_customers_held_while_twilio_is_down(
    infrastructure: Settings,
) -> None:
    async with running_twilio() as twilio:
        # A long open circuit: it stays open while the page is looked at.
        settings = connector_settings(
            infrastructure,
            twilio_base=twilio.base_url,
            connector_max_attempts=100,
            connector_breaker_open_s=120.0,
        )
        await _held_on_the_page(settings, twilio)


async def _held_on_the_page(settings: Settings, twilio: TwilioStandIn) -> None:
    async with fresh_database(settings) as url:
        settings = settings.model_copy(update={"database_url": url})
        await prepare(settings)
        await JourneyOperations(settings, "test").deploy([NOTIFY])
        keys = await role_keys(settings)
        customers = [f"dep-{n}" for n in range(4)]
        twilio.down = True
        artifacts = artifacts_dir()
        problems: list[str] = []
        async with (
            running_worker(settings),
            running_connectors(settings, ["sms"]),
            running_sink(settings, projections()),
            api_server(settings, artifacts / "dashboard-dependencies-api.log") as base,
            httpx.AsyncClient(base_url=base, headers=bearer(keys["operator"])) as api,
        ):
            await publish_sign_ups(settings, customers)

            async def held_everyone() -> bool:
                body = (await api.get("/v1/journeys/dep-notify/dependencies")).json()
                held = {h["step"]: h["customers"] for h in body["held"]}
                return body["circuits"]["twilio"]["state"] == "open" and held == {"text": 4}

            await wait_until(held_everyone, "4 customers held at the SMS step", timeout=60)
            deps = (await api.get("/v1/journeys/dep-notify/dependencies")).json()
            async with browser_page(problems) as (_, page):
                await sign_in(page, base, keys["operator"])
                await page.click('a[data-journey="dep-notify"]', timeout=BROWSER_WAIT_MS)
                node = '#graph .node[data-node="text"][data-held="4"]'
                await page.wait_for_selector(node, timeout=BROWSER_WAIT_MS)
                assert await page.text_content(f"{node} .badge-held text") == "held 4"
                assert await page.is_visible(f"{node} .badge-held rect")
                assert await page.is_hidden('#graph .node[data-node="greet"] .badge-held rect')
                spof = await page.eval_on_selector_all(
                    '#graph .node[data-spof="true"]', "els => els.map(e => e.dataset.node)"
                )
                assert sorted(spof) == deps["single_points"] == ["greet", "text"]
                assert await page.get_attribute("#held-total", "data-held") == "4"
                twilio_circuit = '#dependencies li.circuit[data-provider="twilio"]'
                assert await page.get_attribute(twilio_circuit, "data-state") == "open"
                colour = await page.eval_on_selector(
                    f"{twilio_circuit} .circuit-state", "e => getComputedStyle(e).color"
                )
                assert colour == "rgb(192, 57, 43)"  # --bad: an open circuit is red
                smtp = '#dependencies li.circuit[data-provider="smtp"]'
                assert await page.get_attribute(smtp, "data-state") == "closed"
                row = await page.eval_on_selector_all(
                    '#dependencies tr[data-step="text"] td',
                    "els => els.map(e => e.textContent)",
                )
                assert row[0] == "sms → twilio"
                assert row[-1] == str(deps["held"][0]["customers"])
                await page.screenshot(
                    path=str(artifacts / "dashboard-dependencies.png"), full_page=True
                )
            twilio.down = False
    assert problems == []


DEPLOYED = """\
id: dash-draft
name: Greeting
category: transactional
trigger: {event: draft.go}
steps:
  - id: hello
    send: {channel: in_app, template: draft_hello}
"""
# The change: a reminder after the greeting, one more message per customer.
DRAFT = DEPLOYED.replace("name: Greeting", "name: Greeting and reminder") + (
    "  - id: remind\n    send: {channel: in_app, template: draft_hello}\n"
)
TEMPLATE = 'in_app: {title: "Hi", body: "Hello"}'
CUSTOMERS = [f"draft-{n}" for n in range(3)]


async def test_deploy_a_change_compares_before_it_can_be_confirmed(
    infrastructure: Settings,
) -> None:
    """The comparison comes from POST /v1/journeys/backtest: the page shows its numbers, and
    only then deploys. A server without that route (an older one: here its answer stands in
    for it) shows "not available" and offers no deploy."""
    settings = isolated_settings(infrastructure)
    await prepare(settings)
    keys = await role_keys(settings)
    artifacts = artifacts_dir()
    problems: list[str] = []
    templates = {"draft_hello": TEMPLATE}
    async with (
        api_server(settings, artifacts / "dashboard-deploy-api.log") as base,
        httpx.AsyncClient(base_url=base, headers=bearer(keys["operator"])) as api,
    ):
        first = await api.post("/v1/journeys", json={"yaml": DEPLOYED, "templates": templates})
        assert first.status_code == 200, first.text
        await publish(settings, [make_event(c, "draft.go") for c in CUSTOMERS])
        body = {"yaml": DRAFT, "path": "draft.yaml", "templates": templates, "since": "1h"}
        answer = await api.post("/v1/journeys/backtest", json=body)
        async with browser_page(problems) as (_, page):
            await sign_in(page, base, keys["operator"], "#/deploy")
            await _enter_draft(page)
            await _not_available(page)
            await page.unroute("**/v1/journeys/backtest")
            await page.click("#deploy-backtest")
            await _compared_then_deployed(page, answer)
            await page.screenshot(path=str(artifacts / "dashboard-deploy.png"), full_page=True)
        [journey] = (await api.get("/v1/journeys")).json()
    assert journey["current"] == 2
    # The stand-in 404 is the one console error expected.
    assert [p for p in problems if "404" not in p] == []


async def _enter_draft(page: Page) -> None:
    await page.fill("#deploy-yaml", DRAFT)
    await page.set_input_files(
        "#deploy-templates",
        files=[FilePayload(name="draft_hello.yaml", mimeType="text/yaml",
                           buffer=TEMPLATE.encode())],
    )  # fmt: skip
    await page.wait_for_selector("text=Templates: draft_hello")
    await page.fill("#deploy-since", "1h")
    assert await page.is_hidden("#deploy-confirm")


async def _not_available(page: Page) -> None:
    """The answer a server without the route gives (FastAPI's 404 `not_found`)."""
    missing = {"code": "not_found", "message": "no such route: see /docs for the routes"}
    await page.route(
        "**/v1/journeys/backtest",
        lambda route: route.fulfill(status=404, json=missing),
    )
    await page.click("#deploy-backtest")
    await page.wait_for_selector("#deploy-result p.unavailable")
    text = await page.inner_text("#deploy-result")
    assert "Backtesting is not available on this server" in text
    assert await page.is_hidden("#deploy-confirm")


async def _compared_then_deployed(page: Page, answer: httpx.Response) -> None:
    assert answer.status_code == 200, answer.text
    report = answer.json()
    await page.wait_for_selector("#deploy-go", state="visible")
    sends = await page.eval_on_selector_all(
        "#deploy-result table.sends tbody tr",
        "els => els.map(e => [...e.children].map(c => c.textContent))",
    )
    expected = {
        (r["journey"], r["step"], r["channel"]): [0, 0] for side in ("deployed", "draft")
        for r in report[side]["sends"]
    }  # fmt: skip
    for i, side in enumerate(("deployed", "draft")):
        for r in report[side]["sends"]:
            expected[(r["journey"], r["step"], r["channel"])][i] = r["count"]
    assert [(*row[:3], row[3], row[4]) for row in sends] == [
        (*key, str(before), str(after)) for key, (before, after) in sorted(expected.items())
    ]
    # The draft's extra step: one more message for each customer, and nothing else.
    assert expected == {("dash-draft", "hello", "in_app"): [3, 3],
                        ("dash-draft", "remind", "in_app"): [0, 3]}  # fmt: skip
    assert await page.inner_text("#deploy-differing") == str(report["changes"]["customers"])
    await page.click("#deploy-go")
    await page.wait_for_selector("text=Deployed dash-draft version 2.")
