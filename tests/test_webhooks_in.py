"""Webhooks in: signed Twilio inbound keywords and replies, status callbacks, one-click unsubscribe.

A journey worker, a connector worker (against the Twilio stand-in or aiosmtpd) and the API
(in-process) run together; signatures are computed with the official `twilio` library's
`RequestValidator`, over the public URL (the API is reached at another one, as behind a proxy).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
from twilio.request_validator import RequestValidator

from connectors.records import MESSAGE_SENT
from orchestrator.control.inbound import MESSAGE_DELIVERED
from orchestrator.control.operations import JourneyOperations
from orchestrator.dev.standins.smtp import smtp_server
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.settings import Settings
from tests.api_harness import api_client
from tests.connector_harness import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    connector_settings,
    running_connectors,
    running_twilio,
)
from tests.runtime_harness import (
    TopicReader,
    journey_source,
    make_event,
    of_type,
    prepare,
    publish,
    reader,
    redis_client,
    running_worker,
    wait_until,
)
from tests.stack_harness import running_stack

INBOUND = "/v1/webhooks/twilio/inbound"
STATUS = "/v1/webhooks/twilio/status"
SENDER = "+15550000001"


def _sms(body: str) -> str:
    return f'sms:\n  body: "{body}"\n'


def _two_step_hold(journey: str, channel: str, templates: list[str]) -> str:
    """A send, a wait for `wh.next`, a send, a wait, a send (as many as templates)."""
    steps = []
    for index, template in enumerate(templates):
        steps.append(f"  - id: s{index}\n    send: {{channel: {channel}, template: {template}}}\n")
        if index + 1 < len(templates):
            steps.append(
                f"  - id: hold{index}\n    wait_for:\n      event: wh.next\n      timeout: 1d\n"
                f"      on_event: s{index + 1}\n      on_timeout: s{index + 1}\n"
            )
    return (
        f"id: {journey}\nname: {journey}\ncategory: transactional\n"
        f"trigger:\n  event: wh.started\nsteps:\n" + "".join(steps)
    )


STOP_JOURNEY = journey_source(
    _two_step_hold("wh-stop", "sms", ["wh_one", "wh_two", "wh_three"]),
    {"wh_one": _sms("one"), "wh_two": _sms("two"), "wh_three": _sms("three")},
)

SURVEY = journey_source(
    """
id: wh-survey
name: Reply survey
category: transactional
trigger:
  event: wh.survey
steps:
  - id: ask
    send: {channel: sms, template: wh_ask}
  - id: await_reply
    wait_for:
      event: message.replied
      timeout: 1d
      on_event: classify
      on_timeout: done
  - id: classify
    branch:
      - when: 'has(event.properties.text) && event.properties.text == "YES"'
        next: thanks
      - default: sorry
  - id: thanks
    send: {channel: sms, template: wh_thanks}
    next: done
  - id: sorry
    send: {channel: sms, template: wh_sorry}
  - id: done
    exit: {}
""",
    {
        "wh_ask": _sms("Did it arrive? Reply YES or NO"),
        "wh_thanks": _sms("glad to hear"),
        "wh_sorry": _sms("sorry about that"),
    },
)

MAIL_JOURNEY = journey_source(
    _two_step_hold("wh-mail", "email", ["wh_mail_one", "wh_mail_two"]),
    {
        "wh_mail_one": 'email:\n  subject: "one"\n  body: "first"\n',
        "wh_mail_two": 'email:\n  subject: "two"\n  body: "second"\n',
    },
)


def _named(values: list[Any], name: str, customer: str) -> list[dict[str, Any]]:
    return [
        v
        for v in values
        if isinstance(v, dict) and v.get("name") == name and v.get("customer_id") == customer
    ]


async def _post_twilio(
    client: httpx.AsyncClient,
    settings: Settings,
    path: str,
    form: dict[str, str],
    token: str = AUTH_TOKEN,
) -> httpx.Response:
    """POST a form as Twilio does, signed with `token` over the public URL."""
    signature = RequestValidator(token).compute_signature(settings.public_url + path, form)
    return await client.post(path, data=form, headers={"X-Twilio-Signature": signature})


def _inbound(sender: str, body: str, sid: str) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT_SID,
        "MessageSid": sid,
        "From": sender,
        "To": SENDER,
        "Body": body,
        "NumMedia": "0",
    }


def _suppressed(records: list[Any], customer: str, step: str) -> list[dict[str, Any]]:
    return [r for r in of_type(records, "suppress", customer) if r.get("step") == step]


async def test_signed_stop_suppresses_the_next_sms_and_start_undoes_it(
    infrastructure: Settings,
) -> None:
    async with running_twilio() as twilio:
        settings = connector_settings(infrastructure, twilio_base=twilio.base_url)
        customer, phone = "stop-ada", "+15551110001"
        async with running_stack(settings, STOP_JOURNEY, ["sms"]) as stack:
            client, events, log = stack.client, stack.events, stack.log
            await publish(
                settings,
                [
                    make_event(customer, "profile.updated", {"phone": phone}),
                    make_event(customer, "wh.started"),
                ],
            )
            values = await events.until(lambda vs: bool(_named(vs, MESSAGE_SENT, customer)))
            [sent] = _named(values, MESSAGE_SENT, customer)

            # A status callback finds its message by Twilio's MessageSid.
            status = {
                "AccountSid": ACCOUNT_SID,
                "MessageSid": sent["properties"]["provider_id"],
                "MessageStatus": "delivered",
                "To": phone,
            }
            answer = await _post_twilio(client, settings, STATUS, status)
            assert answer.status_code == 200, answer.text
            values = await events.until(lambda vs: bool(_named(vs, MESSAGE_DELIVERED, customer)))
            [delivered] = _named(values, MESSAGE_DELIVERED, customer)
            assert delivered["properties"]["message_id"] == sent["properties"]["message_id"]
            assert delivered["properties"]["step"] == "s0"

            # Wrongly signed and unsigned: 403 and nothing published.
            stop = _inbound(phone, "stop", "SMstop0001")
            forged = await _post_twilio(client, settings, INBOUND, stop, token="0" * 32)
            unsigned = await client.post(INBOUND, data=stop)
            for refused in (forged, unsigned):
                assert refused.status_code == 403
                assert refused.json()["code"] == "bad_signature"

            # Correctly signed STOP: opted out, one confirmation (a redelivery answers none).
            first = await _post_twilio(client, settings, INBOUND, stop)
            again = await _post_twilio(client, settings, INBOUND, stop)
            assert first.status_code == again.status_code == 200
            assert first.headers["content-type"].startswith("text/xml")
            assert first.text.count("<Message>") == 1
            assert settings.sms_stop_text in first.text
            assert "<Message>" not in again.text
            await _advance_and_expect_suppressed(settings, events, log, customer)
            consents = _named(await events.until(lambda vs: True), "consent.updated", customer)
            # The forged STOP came first on the customer's partition: had it been published,
            # it would be here too. The redelivered one is the same event (same id).
            assert {c["event_id"] for c in consents} == {"consent.updated:SMstop0001"}
            assert {(c["properties"]["channel"], c["properties"]["status"]) for c in consents} == {
                ("sms", "opted_out")
            }

            # START undoes it: the third SMS goes out.
            start = await _post_twilio(
                client, settings, INBOUND, _inbound(phone, "Start", "SMstart001")
            )
            assert settings.sms_start_text in start.text
            await publish(settings, [make_event(customer, "wh.next")])
            await wait_until(
                lambda: twilio.accepted_count()[(phone, "three")] == 1, "the third SMS was sent"
            )
            assert twilio.accepted_count()[(phone, "two")] == 0
            assert twilio.accepted_count()[(phone, "one")] == 1

            # HELP answers the configured text and changes nothing.
            help_answer = await _post_twilio(
                client, settings, INBOUND, _inbound(phone, "HELP", "SMhelp0001")
            )
            assert settings.sms_help_text in help_answer.text


async def _advance_and_expect_suppressed(
    settings: Settings, events: TopicReader, log: TopicReader, customer: str
) -> None:
    await events.until(lambda vs: bool(_named(vs, "consent.updated", customer)))
    await publish(settings, [make_event(customer, "wh.next")])
    records = await log.until(lambda rs: bool(_suppressed(rs, customer, "s1")))
    [suppressed] = _suppressed(records, customer, "s1")
    assert suppressed["reason"] == "opted_out"


async def test_a_reply_advances_the_journey_and_it_branches_on_the_text(
    infrastructure: Settings,
) -> None:
    async with running_twilio() as twilio:
        settings = connector_settings(infrastructure, twilio_base=twilio.base_url)
        topics = await prepare(settings)
        await JourneyOperations(settings, "test").deploy([SURVEY])
        people = {"reply-yes": "+15552220001", "reply-no": "+15552220002"}
        async with (
            running_worker(settings),
            running_connectors(settings, ["sms"]),
            api_client(settings) as client,
            reader(settings, topics.events) as events,
        ):
            await publish(
                settings,
                [
                    event
                    for customer, phone in people.items()
                    for event in (
                        make_event(customer, "profile.updated", {"phone": phone}),
                        make_event(customer, "wh.survey"),
                    )
                ],
            )
            ask = "Did it arrive? Reply YES or NO"
            await wait_until(
                lambda: all(twilio.accepted_count()[(p, ask)] == 1 for p in people.values()),
                "both surveys were sent",
            )
            # A WhatsApp address (`whatsapp:+1...`) finds the same customer: one number.
            replies = [
                ("whatsapp:" + people["reply-yes"], "YES"),
                (people["reply-no"], "no, never"),
            ]
            for sender, text in replies:
                sid = f"SMreply-{sender[-4:]}"
                answer = await _post_twilio(client, settings, INBOUND, _inbound(sender, text, sid))
                assert answer.status_code == 200 and "<Message>" not in answer.text
            await wait_until(
                lambda: (
                    twilio.accepted_count()[(people["reply-yes"], "glad to hear")] == 1
                    and twilio.accepted_count()[(people["reply-no"], "sorry about that")] == 1
                ),
                "each customer got the branch their reply chose",
            )
            values = await events.until(
                lambda vs: all(_named(vs, "message.replied", c) for c in people)
            )
            [replied] = _named(values, "message.replied", "reply-no")
            assert replied["properties"]["text"] == "no, never"
            assert (replied["properties"]["journey"], replied["properties"]["step"]) == (
                "wh-survey",
                "ask",
            )
            assert twilio.accepted_count()[(people["reply-yes"], "sorry about that")] == 0

            # An unknown address: answered 200, counted, nothing published for anyone.
            stranger = await _post_twilio(
                client, settings, INBOUND, _inbound("+15559999999", "hello?", "SMstranger1")
            )
            assert stranger.status_code == 200
            async with redis_client(settings) as redis:
                stats = await redis.hgetall(RedisKeys(settings.redis_prefix).inbound_stats())
            assert stats[b"unknown_address"] == b"1"


async def test_one_click_unsubscribe_suppresses_the_next_email(infrastructure: Settings) -> None:
    with smtp_server() as (mails, port):
        settings = connector_settings(infrastructure, smtp_port=port)
        async with running_stack(settings, MAIL_JOURNEY, ["email"]) as stack:
            client, events, log = stack.client, stack.events, stack.log
            customer = "unsub-ada"
            await publish(
                settings,
                [
                    make_event(customer, "profile.updated", {"email": "Ada@Example.com"}),
                    make_event(customer, "wh.started"),
                ],
            )
            await wait_until(lambda: len(mails.messages) >= 1, "the first email arrived")
            https = mails.messages[0]["List-Unsubscribe"].split(",")[1].strip().strip("<>")
            link = urlsplit(https)
            target = f"{link.path}?{link.query}"
            one_click = {"List-Unsubscribe": "One-Click"}

            tampered = target.replace(f"c={customer}", "c=someone-else")
            refused = await client.post(tampered, data=one_click)
            assert refused.status_code == 403 and refused.json()["code"] == "bad_signature"

            accepted = await client.post(target, data=one_click)
            assert accepted.status_code == 200, accepted.text
            assert accepted.json() == {"status": "opted_out", "channel": "email"}
            await events.until(lambda vs: bool(_named(vs, "consent.updated", customer)))
            await publish(settings, [make_event(customer, "wh.next")])
            records = await log.until(lambda rs: bool(_suppressed(rs, customer, "s1")))
            [suppressed] = _suppressed(records, customer, "s1")
            assert (suppressed["reason"], suppressed["channel"]) == ("opted_out", "email")
            assert len(mails.messages) == 1
            values = await events.until(lambda vs: True)
            consents = _named(values, "consent.updated", customer)
            assert [c["properties"]["status"] for c in consents] == ["opted_out"]
            assert not _named(values, "consent.updated", "someone-else")
