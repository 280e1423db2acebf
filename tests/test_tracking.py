"""Tracked links and the open pixel: a journey's email reaches aiosmtpd with its links
rewritten and a pixel; following them through the API publishes `message.clicked` and
`message.opened` once each (repeats are deduplicated by the journey worker), and redirects
only to URLs we signed. SMS links are tracked too when asked (Twilio stand-in).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import httpx

from orchestrator.dev.standins.smtp import smtp_server
from orchestrator.dev.standins.twilio import TwilioStandIn
from orchestrator.infra.settings import Settings
from tests.api_harness import api_client
from tests.connector_harness import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    connector_settings,
    outbound,
    publish_outbound,
    running_connectors,
)
from tests.runtime_harness import (
    inbound_seen,
    journey_source,
    make_event,
    prepare,
    publish,
    reader,
    wait_until,
)
from tests.stack_harness import running_stack

CART = "https://shop.example/cart?id=7&ref=mail"
HELP = "https://shop.example/help"

# A click is waited for: the journey thanks the customer once they followed a link.
TRACKED = journey_source(
    """
id: tr-news
name: Tracked news
category: transactional
trigger:
  event: tr.start
steps:
  - id: news
    send: {channel: email, template: tr_news}
  - id: await_click
    wait_for:
      event: message.clicked
      timeout: 1d
      on_event: thanks
      on_timeout: done
  - id: thanks
    send: {channel: email, template: tr_thanks}
  - id: done
    exit: {}
""",
    {
        "tr_news": """
email:
  subject: "News"
  body: "Your cart: https://shop.example/cart?id=7&ref=mail. Help: https://shop.example/help"
  html: '<html><body><p><a href="https://shop.example/cart?id=7&amp;ref=mail">cart</a>
    <a href="mailto:help@shop.example">mail us</a> <a href=''https://shop.example/help''>help</a>
    <a href="https://shop.example/cart?id=7&amp;ref=mail">again</a></p></body></html>'
""",
        "tr_thanks": 'email:\n  subject: "Thanks"\n  body: "Thanks for looking"\n',
    },
)


def _named(values: list[Any], name: str) -> list[dict[str, Any]]:
    return [v for v in values if isinstance(v, dict) and v.get("name") == name]


def _local(url: str) -> str:
    """The path of a public URL, for the in-process API."""
    return urlsplit(url).path


async def test_tracked_links_and_the_open_pixel_become_unique_receipts(
    infrastructure: Settings,
) -> None:
    with smtp_server() as (mails, port):
        settings = connector_settings(infrastructure, smtp_port=port)
        async with running_stack(settings, TRACKED, ["email"]) as stack:
            client, events, log = stack.client, stack.events, stack.log
            customer = "track-ada"
            await publish(
                settings,
                [
                    make_event(customer, "profile.updated", {"email": "ada@example.com"}),
                    make_event(customer, "tr.start"),
                ],
            )
            await wait_until(lambda: len(mails.messages) >= 1, "the email arrived")
            html_part, text_part = (mails.messages[0].get_body((k,)) for k in ("html", "plain"))
            assert html_part is not None and text_part is not None
            markup, text = html_part.get_content(), text_part.get_content()
            links = re.findall(r'href=["\']([^"\']+)["\']', markup)
            clicks = [link for link in links if link.startswith(settings.public_url + "/v1/t/c/")]
            # Two links to the cart and one to help: three tracked, the mailto left alone.
            assert len(clicks) == 3 and "mailto:help@shop.example" in links
            assert CART not in markup and HELP not in markup
            assert clicks[0] == clicks[2] != clicks[1]
            [pixel] = re.findall(r'<img src="([^"]+)"', markup)
            assert pixel.startswith(settings.public_url + "/v1/t/o/")
            # The text part's links are tracked too, with the same tokens per URL.
            assert CART not in text and clicks[0] in text and clicks[1] in text
            assert "ref=mail. Help" not in text and text.count(". Help:") == 1

            # Opens: a GIF nobody caches; the repeat (an image proxy, a second look) is the
            # same event, applied once.
            for _ in range(2):
                opened = await client.get(_local(pixel))
                assert opened.status_code == 200
                assert opened.headers["content-type"] == "image/gif"
                assert "no-store" in opened.headers["cache-control"]
                assert opened.content.startswith(b"GIF89a")
            # Clicks: 302 to the URL the template had, HTML-unescaped.
            for link, target in ((clicks[0], CART), (clicks[2], CART), (clicks[1], HELP)):
                followed = await client.get(_local(link))
                assert followed.status_code == 302
                assert followed.headers["location"] == target

            marker = make_event(customer, "tr.marker")
            await publish(settings, [marker])
            records = await log.until(lambda rs: inbound_seen(rs, marker))
            applied = [
                r["record_id"]
                for r in records
                if r.get("type") == "inbound" and r.get("customer_id") == customer
            ]
            values = await events.until(lambda vs: bool(_named(vs, "message.clicked")))
            [sent, *_] = _named(values, "message.sent")
            mid = sent["properties"]["message_id"]
            assert applied.count(f"in:message.opened:{mid}") == 1
            assert applied.count(f"in:message.clicked:{mid}:0") == 1
            assert applied.count(f"in:message.clicked:{mid}:1") == 1
            [first_click, *_] = _named(values, "message.clicked")
            assert first_click["customer_id"] == customer
            assert first_click["properties"] == {
                "message_id": mid,
                "journey": "tr-news",
                "step": "news",
                "instance_id": sent["properties"]["instance_id"],
                "channel": "email",
                "url": CART,
                "link": 0,
            }
            # The journey waited for the click: the thank-you went out, once.
            await wait_until(lambda: len(mails.messages) >= 2, "the thank-you arrived")
            assert [m["Subject"] for m in mails.messages] == ["News", "Thanks"]

            await _refusals(client, pixel, clicks[0])


async def _refusals(client: httpx.AsyncClient, pixel: str, click: str) -> None:
    """Forged, malformed and swapped tokens: JSON errors, no redirect."""
    token = click.rsplit("/", 1)[1]
    payload, signature = token.split(".")
    # Another URL in the claims, the signature kept: refused, so no open redirect.
    forged = payload[:-4] + ("AAAA" if payload[-4:] != "AAAA" else "BBBB") + "." + signature
    answer = await client.get(f"/v1/t/c/{forged}")
    assert answer.status_code == 403 and answer.json()["code"] == "bad_signature"
    for broken in ("not-a-token", f"{payload}.!!!", f"{payload}.{signature[:-2]}"):
        answer = await client.get(f"/v1/t/c/{broken}")
        assert answer.status_code == 404 and answer.json()["code"] == "unknown_link"
    answer = await client.get("/v1/t/c/" + pixel.rsplit("/", 1)[1])
    assert answer.status_code == 404 and answer.json()["code"] == "unknown_link"
    answer = await client.get("/v1/t/o/" + token)
    assert answer.status_code == 404 and answer.json()["code"] == "unknown_link"


async def test_sms_links_are_tracked_when_asked(infrastructure: Settings) -> None:
    twilio = TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN)
    await twilio.start()
    try:
        settings = connector_settings(
            infrastructure, twilio_base=twilio.base_url, sms_link_tracking=True
        )
        topics = await prepare(settings)
        message = outbound("track-sms", "sms", "+15556660001", {"body": f"See {HELP} now"})
        async with (
            running_connectors(settings, ["sms"]),
            api_client(settings) as client,
            reader(settings, topics.events) as events,
        ):
            await publish_outbound(settings, [message])
            await wait_until(lambda: len(twilio.accepted) == 1, "the SMS was accepted")
            body = twilio.accepted[0]["Body"]
            [link] = re.findall(r"https://\S+", body)
            assert body == f"See {link} now" and link.startswith(settings.public_url + "/v1/t/c/")
            followed = await client.get(_local(link))
            assert (followed.status_code, followed.headers["location"]) == (302, HELP)
            values = await events.until(lambda vs: bool(_named(vs, "message.clicked")))
            [clicked] = _named(values, "message.clicked")
            assert clicked["event_id"] == f"message.clicked:{message['message_id']}:0"
            assert (clicked["properties"]["channel"], clicked["properties"]["url"]) == ("sms", HELP)
    finally:
        await twilio.stop()


async def test_without_tracking_the_email_keeps_its_links_and_has_no_pixel(
    infrastructure: Settings,
) -> None:
    with smtp_server() as (mails, port):
        settings = connector_settings(infrastructure, smtp_port=port, email_tracking=False)
        await prepare(settings)
        message = outbound("c1", "email", "c1@example.com", {"subject": "s", "body": f"Go: {HELP}"})
        async with running_connectors(settings, ["email"]):
            await publish_outbound(settings, [message])
            await wait_until(lambda: len(mails.messages) == 1, "the email arrived")
        text, markup = (mails.messages[0].get_body((k,)) for k in ("plain", "html"))
        assert text is not None and markup is not None
        assert f"Go: {HELP}" in text.get_content()
        # The HTML made from the text links its URLs (so they would be tracked when on).
        assert f'<a href="{HELP}">{HELP}</a>' in markup.get_content()
        assert "/v1/t/" not in text.get_content() + markup.get_content()
