"""Survey answers end to end: an SMS reply, an email's signed link, the in-app widget.

A journey worker, a connector worker (the Twilio stand-in, aiosmtpd, the in_app inbox), the
audit sink (a fresh database) and the API (in-process) run together. Each answer goes
through its real path to the `events` topic, the journey (which waits for it), the audit
store and `GET /v1/measure/surveys`; a forged link and a score off the scale publish nothing.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from typing import Any
from urllib.parse import urlsplit

import httpx
from twilio.request_validator import RequestValidator

from connectors.records import MESSAGE_SENT
from orchestrator.contracts.surveys import SURVEY_ANSWERED
from orchestrator.control.operations import JourneyOperations
from orchestrator.dev.standins.smtp import smtp_server
from orchestrator.dev.standins.twilio import TwilioStandIn
from orchestrator.infra.settings import Settings
from tests.api_harness import api_client, bearer, role_keys
from tests.audit_harness import fresh_database, running_sink
from tests.connector_harness import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    connector_settings,
    running_connectors,
)
from tests.runtime_harness import (
    journey_source,
    make_event,
    prepare,
    publish,
    reader,
    running_worker,
    wait_until,
)

INBOUND = "/v1/webhooks/twilio/inbound"
JOURNEY = "sv-journey"
ASK_SMS = "How likely are you to recommend us? Reply 0-10"
THANKS = "Thank you, promoter!"

SOURCE = journey_source(
    f"""
id: {JOURNEY}
name: Survey on every channel
category: transactional
trigger:
  event: sv.start
steps:
  - id: ask_sms
    send: {{channel: sms, template: sv_sms, survey: nps}}
  - id: ask_email
    send: {{channel: email, template: sv_email, survey: csat}}
  - id: ask_app
    send: {{channel: in_app, template: sv_app, survey: nps}}
  - id: await_answer
    wait_for:
      event: survey.answered
      timeout: 1d
      on_event: classify
      on_timeout: done
  - id: classify
    branch:
      - when: 'event.properties.score >= 9'
        next: thanks
      - default: done
  - id: thanks
    send: {{channel: sms, template: sv_thanks}}
    next: done
  - id: done
    exit: {{}}
""",
    {
        "sv_sms": f'sms:\n  body: "{ASK_SMS}"\n',
        "sv_thanks": f'sms:\n  body: "{THANKS}"\n',
        # Liquid leaves `{survey_url}` alone; the email connector signs it in.
        "sv_email": (
            "email:\n  subject: How did we do?\n  body: >-\n    Rate us 1-5:"
            " {% for n in (1..5) %}{survey_url}?score={{ n }} {% endfor %}\n"
        ),
        "sv_app": 'in_app:\n  title: "Quick question"\n  body: "0-10: would you recommend us?"\n',
    },
)


async def _post_twilio(
    client: httpx.AsyncClient, settings: Settings, form: dict[str, str]
) -> httpx.Response:
    signature = RequestValidator(AUTH_TOKEN).compute_signature(settings.public_url + INBOUND, form)
    return await client.post(INBOUND, data=form, headers={"X-Twilio-Signature": signature})


def _reply(sender: str, body: str, sid: str) -> dict[str, str]:
    return {"AccountSid": ACCOUNT_SID, "MessageSid": sid, "From": sender, "To": "+15550000001",
            "Body": body, "NumMedia": "0"}  # fmt: skip


def _named(values: list[Any], name: str) -> list[dict[str, Any]]:
    return [v for v in values if isinstance(v, dict) and v.get("name") == name]


def _sent(values: list[Any], step: str) -> bool:
    return any(v["properties"].get("step") == step for v in _named(values, MESSAGE_SENT))


async def test_answers_from_sms_email_and_in_app_reach_the_store_and_the_figures(
    infrastructure: Settings,
) -> None:
    twilio = TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN)
    await twilio.start()
    try:
        async with fresh_database(infrastructure) as url:
            with smtp_server() as (mails, port):
                settings = connector_settings(
                    infrastructure, smtp_port=port, twilio_base=twilio.base_url, database_url=url
                )
                await _run(settings, twilio, mails.messages)
    finally:
        await twilio.stop()


async def _run(settings: Settings, twilio: TwilioStandIn, mails: list[Any]) -> None:
    topics = await prepare(settings)
    await JourneyOperations(settings, "test").deploy([SOURCE])
    keys = await role_keys(settings)
    customer, phone = "sv-ada", "+15553330001"
    async with (
        running_worker(settings),
        running_connectors(settings, ["sms", "email", "in_app"]),
        running_sink(settings),
        api_client(settings) as client,
        reader(settings, topics.events) as events,
    ):
        await publish(
            settings,
            [
                make_event(customer, "profile.updated", {"phone": phone, "email": "ada@x.example"}),
                make_event(customer, "sv.start"),
            ],
        )
        await events.until(
            lambda vs: all(_sent(vs, s) for s in ("ask_sms", "ask_email", "ask_app"))
        )

        # SMS: "9 great service" answers the NPS question; the journey waits for it.
        answered = await _post_twilio(client, settings, _reply(phone, "9 great service", "SMsv1"))
        assert answered.status_code == 200 and "<Message>" not in answered.text
        await wait_until(lambda: twilio.accepted_count()[(phone, THANKS)] == 1, "the thanks SMS")
        await events.until(lambda vs: _sent(vs, "thanks"))
        # The last message to the phone is now the thanks, no survey: a reply is just a reply.
        await _post_twilio(client, settings, _reply(phone, "10", "SMsv2"))

        # Email: five signed links, placed by the template, tracked (email tracking is on by
        # default): a reader's click goes through the tracked redirect to the survey link.
        text = mails[0].get_body(("plain",)).get_content()
        tracked = re.findall(r"https://orchestrator\.example(/v1/t/c/\S+)", text)
        assert len(tracked) == 5
        hop = await client.get(tracked[0])
        assert hop.status_code == 302, hop.text
        target = urlsplit(hop.headers["location"])
        assert (target.netloc, target.query) == ("orchestrator.example", "score=1")
        link = target.path
        assert link.startswith("/v1/s/")
        forged = link[:-1] + ("A" if link[-1] != "A" else "B")
        refused = await client.get(forged, params={"score": "5"})
        assert refused.status_code == 403 and refused.json()["code"] == "bad_signature"
        for bad in ("6", "0", "x"):
            off = await client.get(link, params={"score": bad})
            assert off.status_code == 422 and off.json()["code"] == "invalid_score", off.text
        chooser = await client.get(link)
        assert chooser.status_code == 200 and chooser.text.count("?score=") == 5
        first = await client.get(link, params={"score": "2"})
        assert first.status_code == 200 and "<form" in first.text
        assert first.headers["content-type"].startswith("text/html")
        # The comment form answers again; the figures keep the message's latest answer.
        commented = await client.post(link, data={"score": "4", "comment": "quick delivery"})
        assert commented.status_code == 200 and "comment too" in commented.text

        # In-app: the inbox shows the survey; the widget answers it.
        publisher = bearer(keys["publisher"])
        inbox = await client.get(f"/v1/customers/{customer}/inbox", headers=publisher)
        [entry] = inbox.json()["messages"]
        assert entry["survey"] == "nps" and entry["step"] == "ask_app"
        answer_path = f"/v1/customers/{customer}/inbox/{entry['id']}/answer"
        off = await client.post(answer_path, json={"score": 11}, headers=publisher)
        assert off.status_code == 422 and off.json()["code"] == "invalid_score"
        missing = await client.post(
            f"/v1/customers/{customer}/inbox/nope/answer", json={"score": 3}, headers=publisher
        )
        assert missing.status_code == 404
        accepted = await client.post(
            answer_path, json={"score": 3, "comment": "too slow"}, headers=publisher
        )
        assert accepted.status_code == 202, accepted.text

        # Exactly the four answers were published (a forged or refused one, published, would
        # sit before them on the customer's partition).
        values = await events.until(lambda vs: len(_named(vs, SURVEY_ANSWERED)) >= 4)
        got = sorted(
            (a["properties"]["channel"], a["properties"]["score"], a["properties"].get("comment"))
            for a in _named(values, SURVEY_ANSWERED)
        )
        assert got == [
            ("email", 2, None), ("email", 4, "quick delivery"), ("in_app", 3, "too slow"),
            ("sms", 9, "great service"),
        ]  # fmt: skip
        [sms] = [a for a in _named(values, SURVEY_ANSWERED) if a["channel"] == "sms"]
        assert (sms["properties"]["journey"], sms["properties"]["step"]) == (JOURNEY, "ask_sms")
        replies = _named(values, "message.replied")
        assert [r["properties"]["text"] for r in replies] == ["9 great service", "10"]

        await _check_figures(client, keys, customer)
        await _check_report(settings)


async def _figures(client: httpx.AsyncClient, secret: str, **query: str) -> dict[str, Any]:
    answer = await client.get("/v1/measure/surveys", params=query, headers=bearer(secret))
    assert answer.status_code == 200, answer.text
    figures: dict[str, Any] = answer.json()
    return figures


async def _check_figures(client: httpx.AsyncClient, keys: dict[str, str], customer: str) -> None:
    async def stored() -> bool:
        figures = await _figures(client, keys["admin"])
        return len(figures["comments"]) == 3

    await wait_until(stored, "the four answers in the audit store")
    figures = await _figures(client, keys["admin"])
    [week] = {row["week"] for row in figures["nps"] + figures["csat"]}
    assert re.fullmatch(r"\d{4}-W\d{2}", week)
    assert figures["nps"] == [
        {"week": week, "journey": JOURNEY, "channel": "in_app", "responses": 1, "promoters": 0,
         "passives": 0, "detractors": 1, "score": -100.0},
        {"week": week, "journey": JOURNEY, "channel": "sms", "responses": 1, "promoters": 1,
         "passives": 0, "detractors": 0, "score": 100.0},
    ]  # fmt: skip
    assert figures["csat"] == [
        {"week": week, "journey": JOURNEY, "channel": "email", "responses": 1, "satisfied": 1,
         "score": 100.0},
    ]  # fmt: skip
    comments = [
        (c["channel"], c["score"], c["text"], c["customer_id"]) for c in figures["comments"]
    ]
    assert comments == [
        ("in_app", 3, "too slow", customer), ("email", 4, "quick delivery", customer),
        ("sms", 9, "great service", customer),
    ]  # fmt: skip
    assert figures["unreadable"] == 0

    # Filters; operators without the `pii` grant see no comment text; publishers nothing.
    sms_only = await _figures(client, keys["admin"], channel="sms")
    assert [r["channel"] for r in sms_only["nps"]] == ["sms"] and sms_only["csat"] == []
    other = await _figures(client, keys["admin"], journey="another")
    assert other["nps"] == other["csat"] == other["comments"] == []

    # Reading the comments is recorded, as any read of a customer's personal data is.
    async def recorded() -> bool:
        query = {"customer": customer, "kind": "data_access"}
        got = await client.get("/v1/audit/records", params=query, headers=bearer(keys["admin"]))
        return any(r["record"].get("fields") == ["survey.comments"] for r in got.json()["records"])

    await wait_until(recorded, "a data_access record of the comments read")
    masked = await _figures(client, keys["operator"])
    assert {c["text"] for c in masked["comments"]} == {"***"}
    assert masked["nps"] == figures["nps"]
    refused = await client.get("/v1/measure/surveys", headers=bearer(keys["publisher"]))
    assert refused.status_code == 403


async def _check_report(settings: Settings) -> None:
    """`orchestrator report JOURNEY` ends with the same survey figures as tables."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "orchestrator", "report", JOURNEY,
        env={**os.environ, **settings.as_environment(), "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    rows = [" ".join(line.replace("│", " ").split()) for line in stdout.decode().splitlines()]
    assert any(r.endswith(f"{JOURNEY} sms 1 1 0 0 +100.0") for r in rows), rows
    assert any(r.endswith(f"{JOURNEY} in_app 1 0 0 1 -100.0") for r in rows), rows
    assert any(r.endswith(f"{JOURNEY} email 1 1 100.0") for r in rows), rows
    assert any(r.endswith("in_app nps 3 too slow") for r in rows), rows
