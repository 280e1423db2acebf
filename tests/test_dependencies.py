"""The touch-point dependency map: from a journey's definition, and live while a provider is down.

A library journey's map lists its channels, providers and link hosts and flags the steps with
no fallback; with the Twilio stand-in down (a real worker and connector worker), the API's map
shows the provider's circuit open and the customers held at the SMS step, and nobody once the
provider is back.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator.cli import main
from orchestrator.control.operations import JourneyOperations
from orchestrator.infra.settings import Settings
from orchestrator.journey.dependencies import DYNAMIC_HOST, journey_dependencies, provider_of
from orchestrator.journey.library import load_journeys
from tests.api_harness import api_client, bearer, role_keys
from tests.audit_harness import fresh_database
from tests.connector_harness import connector_settings, running_connectors, running_twilio
from tests.runtime_harness import (
    journey_source,
    make_event,
    prepare,
    publish,
    running_worker,
    wait_until,
)

JOURNEYS = Path(__file__).resolve().parent.parent / "journeys"


def test_a_library_journey_lists_its_touch_points_and_flags_steps_without_fallback() -> None:
    [journey] = load_journeys([JOURNEYS / "win-back.yaml"])
    deps = journey_dependencies(journey)
    assert deps.channels == ("email", "push", "in_app", "sms", "whatsapp")
    assert deps.providers == ("smtp", "fcm", "inbox", "twilio")
    assert deps.link_hosts == ("shop.northwind.example", "nwd.example")
    by_step = {send.step: send for send in deps.sends}
    # SMS with a WhatsApp fallback is still one provider: Twilio down stops both.
    assert by_step["last_call"].providers == ("twilio", "twilio")
    assert by_step["last_call"].single_point == "sms and whatsapp all go through twilio"
    # Email with push and in-app fallbacks survives any one provider's failure.
    assert {s.step for s in deps.single_points} == {"last_call"}
    assert all(by_step[s].single_point is None for s in by_step if s != "last_call")

    [welcome] = load_journeys([JOURNEYS / "welcome-series.yaml"])
    tips = {s.step: s.single_point for s in journey_dependencies(welcome).single_points}
    assert tips == {
        "tips_kitchen": "only email (smtp), no fallback channel",
        "tips_outdoor": "only email (smtp), no fallback channel",
        "tips_general": "only email (smtp), no fallback channel",
    }


def test_webhook_receivers_are_providers_and_computed_hosts_are_named(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "hook.yaml").write_text(
        'webhook:\n  url: "https://{{ profile.crm }}/hooks"\n'
        '  payload: {video: "https://video.example/v/{{ event.properties.id }}"}\n'
        'email:\n  subject: "s"\n'
        '  body: "see https://sho.rt/abc and https://{{ profile.site }}/x"\n'
    )
    (tmp_path / "hooked.yaml").write_text(
        "id: hooked\nname: hooked\ntrigger: {event: go}\nsteps:\n"
        "  - id: call\n    send: {channel: webhook, template: hook, fallback: [email]}\n"
    )
    [journey] = load_journeys([tmp_path / "hooked.yaml"])
    [send] = journey_dependencies(journey).sends
    assert send.providers == (f"webhook:{DYNAMIC_HOST}", "smtp")
    assert send.link_hosts == tuple(sorted((DYNAMIC_HOST, "sho.rt", "video.example")))
    assert send.single_point is None
    assert provider_of("webhook", {"url": "https://crm.example:8443/x"}) == "webhook:crm.example"


def test_validate_risks_lists_single_points_of_failure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(JOURNEYS.parent)
    assert main(["validate", "--risks", "journeys/win-back.yaml", "journeys/nps-survey.yaml"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "win-back: providers smtp, fcm, inbox, twilio; links to shop.northwind.example, "
        "nwd.example",
        "win-back: step last_call: single point of failure: sms and whatsapp all go through twilio",
        "nps-survey: providers smtp, twilio, inbox, webhook:cx.northwind.example; links to "
        "(our survey page), reviews.example.com",
        "nps-survey: step detractor: single point of failure: only webhook "
        "(webhook:cx.northwind.example), no fallback channel",
    ]
    assert err.splitlines() == [
        "ok: 2 journeys valid",
        "2 single points of failure in 2 journeys",
    ]


NOTIFY = journey_source(
    """
id: dep-notify
name: Notify by SMS only
category: transactional
trigger:
  event: dep.go
steps:
  - id: greet
    send: {channel: email, template: dep_mail}
  - id: text
    send: {channel: sms, template: dep_sms}
""",
    {
        "dep_mail": 'email:\n  subject: "hi"\n  body: "see https://help.example/x"\n',
        "dep_sms": 'sms:\n  body: "hello"\n',
    },
)


async def publish_sign_ups(settings: Settings, customers: list[str]) -> None:
    """Each customer gets a phone number, then starts `dep-notify`."""
    await publish(
        settings,
        [
            event
            for n, customer in enumerate(customers)
            for event in (
                make_event(customer, "profile.updated", {"phone": f"+1555200{n:04d}"}),
                make_event(customer, "dep.go"),
            )
        ],
    )


async def test_the_live_map_shows_customers_held_while_a_provider_is_down(
    infrastructure: Settings,
) -> None:
    async with running_twilio() as twilio:
        settings = connector_settings(
            infrastructure, twilio_base=twilio.base_url, connector_max_attempts=100
        )
        await prepare(settings)
        await JourneyOperations(settings, "test").deploy([NOTIFY])
        keys = await role_keys(settings)
        customers = [f"dep-{n}" for n in range(4)]
        twilio.down = True
        async with (
            running_worker(settings),
            running_connectors(settings, ["sms"]),
            api_client(settings) as client,
        ):
            await publish_sign_ups(settings, customers)

            async def held_everyone() -> bool:
                body = await _map(client, keys["operator"])
                held = {h["step"]: h["customers"] for h in body["held"]}
                return body["circuits"]["twilio"]["state"] == "open" and held == {"text": 4}

            await wait_until(held_everyone, "4 customers held at the SMS step", timeout=60)
            body = await _map(client, keys["operator"])
            assert body["single_points"] == ["greet", "text"]
            assert body["providers"] == ["smtp", "twilio"]
            assert body["link_hosts"] == ["help.example"]
            assert body["circuits"]["smtp"] == {"state": "closed", "open_until": None}
            assert body["circuits"]["twilio"]["open_until"].endswith("Z")
            [held] = body["held"]
            assert held == {
                "step": "text",
                "channel": "sms",
                "provider": "twilio",
                "customers": 4,
                "messages": 4,
            }

            # `orchestrator report JOURNEY` shows the same map under the journey's figures.
            async with fresh_database(settings) as url:
                env = {
                    **os.environ,
                    **settings.as_environment(),
                    "ORCHESTRATOR_DATABASE_URL": url,
                    "COLUMNS": "200",
                }
                done = await asyncio.to_thread(
                    subprocess.run,
                    [sys.executable, "-m", "orchestrator", "report", "dep-notify"],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
            assert done.returncode == 0, done.stderr
            lines = [" ".join(line.replace("│", " ").split()) for line in done.stdout.splitlines()]
            assert "text sms twilio - only sms (twilio), no fallback channel" in lines
            # The circuit reopens after each failed probe: open (until some instant) or probing.
            assert any(
                line.startswith(("twilio open until 20", "twilio half_open")) for line in lines
            )
            assert "text sms twilio 4 4" in lines

            twilio.down = False

            async def released() -> bool:
                held: list[Any] = (await _map(client, keys["operator"]))["held"]
                return held == []

            await wait_until(released, "every held SMS delivered", timeout=60)
        assert sorted(m["To"] for m in twilio.accepted) == [f"+1555200{n:04d}" for n in range(4)]

        # Operators and admins only; an unknown journey is a 404 with a stable code.
        async with api_client(settings) as client:
            for role, status in (("publisher", 403), ("auditor", 403), ("admin", 200)):
                answer = await client.get(
                    "/v1/journeys/dep-notify/dependencies", headers=bearer(keys[role])
                )
                assert answer.status_code == status, role
            missing = await client.get(
                "/v1/journeys/nope/dependencies", headers=bearer(keys["operator"])
            )
            assert missing.status_code == 404
            assert missing.json()["code"] == "journey_not_found"


async def _map(client: httpx.AsyncClient, key: str) -> dict[str, Any]:
    answer = await client.get("/v1/journeys/dep-notify/dependencies", headers=bearer(key))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body
