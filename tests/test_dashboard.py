"""The dashboard in a real browser: Debian's Chromium, driven by Playwright, against the real
stack (a worker runs a journey, the audit sink stores its records, `orchestrator api` serves
the page and the figures). The page must draw the journey's graph with the API's counts,
follow a new entry live, and log no console error. The screenshot is kept as a test artefact
in `test-artifacts/dashboard.png` (or `$ORCHESTRATOR_TEST_ARTIFACTS/dashboard.png`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Error, Page

from orchestrator.api.dashboard import STATIC_DIR
from orchestrator.infra.settings import Settings
from orchestrator.measure.registry import projections
from tests.api_harness import api_client, bearer, role_keys
from tests.api_server import api_server
from tests.audit_harness import fresh_database, running_sink, wait_consumed
from tests.dashboard_browser import BROWSER_WAIT_MS, artifacts_dir, browser_page, sign_in
from tests.runtime_harness import (
    isolated_settings,
    make_event,
    prepare,
    publish,
    running_worker,
    wait_all_consumed,
    wait_until,
)

JOURNEY = "dash-welcome"
JOURNEY_YAML = """\
id: dash-welcome
name: Dashboard test welcome
category: transactional
trigger: {event: dash.signed_up}
exit_when:
  - {event: dash.purchased, goal: true}
max_duration: 30d
steps:
  - id: subject_test
    split:
      - {variant: A, weight: 50, next: welcome_a}
      - {variant: B, weight: 50, next: welcome_b}
  - id: welcome_a
    send: {channel: in_app, template: dash_hello}
    next: await_open
  - id: welcome_b
    send: {channel: in_app, template: dash_hi}
  - id: await_open
    wait_for: {event: dash.opened, timeout: 3d, on_event: opened, on_timeout: nudge}
  - id: opened
    update_profile: {opened_app: "yes"}
    next: done
  - id: nudge
    send: {channel: in_app, template: dash_hello}
  - id: done
    exit: {}
"""
TEMPLATES = {
    "dash_hello": 'in_app: {title: "Hello", body: "Welcome aboard"}',
    "dash_hi": 'in_app: {title: "Hi", body: "Good to see you"}',
}
# Eight sign-ups; three open the app (-> opened -> done), two buy (a goal), three still wait.
CUSTOMERS = [f"dash-{n}" for n in range(8)]
OPENERS = CUSTOMERS[:3]
BUYERS = CUSTOMERS[3:5]


async def test_the_page_and_its_vendored_files_are_served_without_a_key(
    infrastructure: Settings,
) -> None:
    vendored = sorted(p for p in (STATIC_DIR / "vendor").rglob("*") if p.is_file())
    async with api_client(isolated_settings(infrastructure)) as client:
        page = await client.get("/ui")
        script = await client.get("/ui/assets/js/main.js")
        served = [await client.get(f"/ui/assets/{p.relative_to(STATIC_DIR)}") for p in vendored]
        outside = await client.get("/ui/assets/%2e%2e/dashboard.py")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    # Only this origin: a page that reached for a CDN would fail in the browser test too.
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "/ui/assets/js/main.js" in page.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert [r.status_code for r in served] == [200] * len(vendored)
    # Each vendored package comes with its licence, named in the manifest.
    manifest = (STATIC_DIR / "vendor" / "MANIFEST.txt").read_text()
    for line in manifest.splitlines()[2:]:
        directory = line.split("-> vendor/")[1]
        assert (STATIC_DIR / "vendor" / directory / "LICENSE").is_file(), line
    assert outside.status_code == 404
    assert outside.json()["code"] == "file_not_found"


@pytest.fixture
def artifacts() -> Path:
    """Where the screenshot and the API's log go (kept after the test)."""
    return artifacts_dir()


async def test_dashboard_draws_the_journey_with_the_api_counts(
    infrastructure: Settings, artifacts: Path
) -> None:
    async with fresh_database(infrastructure) as url:
        settings = isolated_settings(infrastructure, database_url=url)
        topics = await prepare(settings)
        keys = await role_keys(settings)
        async with (
            running_worker(settings),
            running_sink(settings, projections()),
            api_server(settings, artifacts / "dashboard-api.log") as base,
            httpx.AsyncClient(base_url=base, headers=bearer(keys["operator"])) as api,
        ):
            deployed = await api.post(
                "/v1/journeys",
                json={"yaml": JOURNEY_YAML, "path": f"{JOURNEY}.yaml", "templates": TEMPLATES},
            )
            assert deployed.status_code == 200, deployed.text
            await _run_journey(settings, api)

            async def settled() -> bool:
                await wait_all_consumed(settings)
                await wait_consumed(settings, url, topics.interactions)
                return True

            await wait_until(settled, "the worker and the audit sink caught up")
            await _check_in_browser(settings, api, base, keys["operator"], artifacts)


async def _run_journey(settings: Settings, api: httpx.AsyncClient) -> None:
    await _wait_deployed(api)
    await publish(settings, [make_event(c, "dash.signed_up") for c in CUSTOMERS])
    await _wait_figures(api, lambda f: f["entered"] == len(CUSTOMERS) and _waiting(f) == 8)
    await publish(settings, [make_event(c, "dash.opened") for c in OPENERS])
    await publish(settings, [make_event(c, "dash.purchased") for c in BUYERS])
    await _wait_figures(api, lambda f: f["goals"] == len(BUYERS) and _waiting(f) == 3)


def _waiting(figures: dict[str, Any]) -> int:
    return sum(int(s["waiting"]) for s in figures["steps"])


async def _wait_deployed(api: httpx.AsyncClient) -> None:
    async def visible() -> bool:
        return (await api.get(f"/v1/journeys/{JOURNEY}/graph")).status_code == 200

    await wait_until(visible, "the deployed journey is readable")


async def _wait_figures(api: httpx.AsyncClient, done: Any) -> dict[str, Any]:
    latest: dict[str, Any] = {}

    async def reached() -> bool:
        nonlocal latest
        answer = await api.get(f"/v1/measure/journeys/{JOURNEY}")
        assert answer.status_code == 200, answer.text
        latest = answer.json()
        return bool(done(latest))

    try:
        await wait_until(reached, "the journey's figures reach the expected state")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the last figures: {latest}") from None
    return latest


async def _check_in_browser(
    settings: Settings, api: httpx.AsyncClient, base: str, key: str, artifacts: Path
) -> None:
    graph = (await api.get(f"/v1/journeys/{JOURNEY}/graph")).json()
    figures = (await api.get(f"/v1/measure/journeys/{JOURNEY}?version=1")).json()
    funnel = (await api.get(f"/v1/measure/journeys/{JOURNEY}/funnel?version=1")).json()
    experiments = (await api.get(f"/v1/measure/journeys/{JOURNEY}/experiments?version=1")).json()
    dependencies = (await api.get(f"/v1/journeys/{JOURNEY}/dependencies")).json()
    problems: list[str] = []
    async with browser_page(problems) as (browser, page):
        await _open_journey(page, base, key)
        await page.wait_for_selector(
            f'#graph .node[data-node="@entry"][data-entered="{figures["entered"]}"]',
            timeout=BROWSER_WAIT_MS,
        )
        drawn = await _drawn(page)
        assert drawn["nodes"] == {n["id"] for n in graph["nodes"]}
        assert drawn["edges"] == {(e["from"], e["to"]) for e in graph["edges"]}
        _assert_counts(drawn, figures)
        assert await _funnel_rows(page) == [
            (s["step"], f"{s['entered']:,}") for s in funnel["steps"]
        ]
        [split] = experiments["experiments"]
        assert await _experiment_rows(page) == [
            (a["variant"], str(a["entries"]), str(a["conversions"])) for a in split["arms"]
        ]
        # The dependency map: in-app only steps have no fallback, badged on the graph.
        await page.wait_for_selector("#dependencies table.dependencies", timeout=BROWSER_WAIT_MS)
        spof = await page.eval_on_selector_all(
            '#graph .node[data-spof="true"]', "els => els.map(e => e.dataset.node)"
        )
        assert sorted(spof) == sorted(dependencies["single_points"]) != []
        await page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)
        # Live: one more sign-up reaches the open page without a reload.
        await publish(settings, [make_event("dash-late", "dash.signed_up")])
        await page.wait_for_selector(
            f'#graph .node[data-node="@entry"][data-entered="{figures["entered"] + 1}"]',
            timeout=BROWSER_WAIT_MS,
        )
        await _check_refused_key(browser, base)
    assert problems == []


async def _check_refused_key(browser: Browser, base: str) -> None:
    """A wrong key is refused on the page with the API's reason, not swallowed. (Its own
    page: the browser logs the 401 answers as console errors, which are expected here.)"""
    page = await browser.new_page()
    await page.goto(f"{base}/ui")
    await page.fill("#key", "ok_not_a_real_key")
    await page.click("#login button[type=submit]")
    await page.wait_for_selector("#login-error:not([hidden])", timeout=BROWSER_WAIT_MS)
    assert await page.inner_text("#login-error") == (
        "The key was refused: the API key is unknown or revoked: ask an admin for a key"
    )
    assert await page.is_hidden("#app")
    await page.close()


async def _open_journey(page: Page, base: str, key: str) -> None:
    """Log in through the form and pick the journey in the list, as a person would."""
    await sign_in(page, base, key)
    try:
        await page.click(f'a[data-journey="{JOURNEY}"]', timeout=BROWSER_WAIT_MS)
    except Error as exc:
        raise AssertionError(f"the journey list never showed {JOURNEY}: {exc}") from exc


async def _drawn(page: Page) -> dict[str, Any]:
    """The graph as the page drew it: node and edge ids, and the counts in their data."""
    nodes = await page.eval_on_selector_all(
        "#graph .node",
        """els => els.map(e => ({id: e.dataset.node, entered: e.dataset.entered,
            waiting: e.dataset.waiting, text: e.querySelector('.node-counts').textContent}))""",
    )
    edges = await page.eval_on_selector_all(
        "#graph .edge",
        """els => els.map(e => ({from: e.dataset.from, to: e.dataset.to,
            count: e.dataset.count, text: e.querySelector('.edge-count').textContent}))""",
    )
    return {
        "nodes": {n["id"] for n in nodes},
        "node_counts": {n["id"]: n for n in nodes},
        "edges": {(e["from"], e["to"]) for e in edges},
        "edge_counts": {(e["from"], e["to"]): e for e in edges},
    }


def _assert_counts(drawn: dict[str, Any], figures: dict[str, Any]) -> None:
    """Every step's entered/waiting and every edge's count on the page equal the API's."""
    for step in figures["steps"]:
        node = drawn["node_counts"][step["step"]]
        assert (node["entered"], node["waiting"]) == (str(step["entered"]), str(step["waiting"]))
        assert f"entered {step['entered']:,}" in node["text"]
        assert f"waiting {step['waiting']:,}" in node["text"]
    assert drawn["node_counts"]["@entry"]["entered"] == str(figures["entered"])
    measured = {(e["from"], e["to"]): e["count"] for e in figures["edges"]}
    assert measured, "the API measured no transition: the journey did not run"
    assert set(measured) <= drawn["edges"], "a measured move has no edge in the drawing"
    assert drawn["node_counts"]["@end"]["entered"] == str(figures["exits"].get("completed", 0))
    for pair, edge in drawn["edge_counts"].items():
        # Every entry takes the trigger's edge; the API counts moves between steps.
        count = figures["entered"] if pair[0] == "@entry" else measured.get(pair, 0)
        assert edge["count"] == str(count), pair
        assert edge["text"] == (f"{count:,}" if count else "")


async def _funnel_rows(page: Page) -> list[tuple[str, str]]:
    rows = await page.eval_on_selector_all(
        "#funnel tr[data-step]",
        "els => els.map(e => [e.dataset.step, e.querySelector('td.n').textContent])",
    )
    return [(step, entered) for step, entered in rows]


async def _experiment_rows(page: Page) -> list[tuple[str, str, str]]:
    rows = await page.eval_on_selector_all(
        "#experiments tr[data-variant]",
        """els => els.map(e => [e.dataset.variant,
            ...[...e.querySelectorAll('td.n')].slice(0, 2).map(td => td.textContent)])""",
    )
    return [(variant, entries, conversions) for variant, entries, conversions in rows]
