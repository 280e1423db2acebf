"""The email channel: SMTP through `aiosmtplib`, multipart text + HTML, one-click unsubscribe,
survey answer links.

A message asking a survey (`survey: nps|csat` on its send step) gets signed answer links
(`infra/surveylinks.py`): the connector replaces each `{survey_url}` in the rendered body and
html with the link's base, to which a template appends `?score=N` (Liquid leaves single
braces alone, so the engine, which cannot sign, passes the placeholder through). A survey
template that places no `{survey_url}` gets the links appended: one line in the text (a page
offering each score), and one link per score in the template's HTML.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from urllib.parse import quote

import aiosmtplib

from connectors.base import Delivered, OutboundMessage, Outcome, Permanent, Retry
from connectors.smtp_pool import SessionsBusyError, SmtpSessionPool
from connectors.tracking import LinkTracker, replace_urls
from connectors.verp import BounceAddresses
from orchestrator.contracts.surveys import SCALES
from orchestrator.errors import ConfigurationError
from orchestrator.infra.settings import Settings
from orchestrator.infra.surveylinks import SurveyLinks, SurveyTicket
from orchestrator.infra.tracking import TrackingTokens
from orchestrator.infra.unsubscribe import UnsubscribeLinks
from orchestrator.journey.dependencies import provider_of

__all__ = ["SURVEY_PLACEHOLDER", "EmailConnector", "build_email"]

SURVEY_PLACEHOLDER = "{survey_url}"

# Header lines may be 998 characters (RFC 5322); the default 78 would fold the unsubscribe
# URLs, and some receivers do not unfold a URL inside <...> back.
_POLICY = SMTP.clone(max_line_length=998)


def build_email(
    message: OutboundMessage,
    sender: str,
    mailbox: str,
    links: UnsubscribeLinks,
    *,
    surveys: SurveyLinks,
    tracking: TrackingTokens | None = None,
) -> EmailMessage:
    """The MIME message: text and HTML alternatives, `Message-ID` from the message id,
    `List-Unsubscribe` (mailto + signed HTTPS) with `List-Unsubscribe-Post` (RFC 8058), and
    survey links for a survey message.

    With `tracking`, links in both parts (survey links too) become tracked redirects and the
    HTML part gets an open pixel (`connectors/tracking.py`)."""
    content = message.content
    email = EmailMessage(policy=_POLICY)
    email["From"] = sender
    email["To"] = message.to
    email["Subject"] = str(content.get("subject", ""))
    email["Date"] = format_datetime(datetime.now(UTC))
    domain = sender.rpartition("@")[2].rstrip(">") or "orchestrator.invalid"
    # The same id on every try, so a receiver can recognise a duplicate for what it is.
    email["Message-ID"] = f"<{message.message_id}@{domain}>"
    url = links.url(message.customer_id, "email", message.message_id)
    subject = quote(f"unsubscribe {url.partition('?')[2]}")
    email["List-Unsubscribe"] = f"<mailto:{mailbox}?subject={subject}>, <{url}>"
    email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    text = str(content.get("body", ""))
    given = str(content["html"]) if content.get("html") else None
    if message.survey:
        text, given = _with_survey_links(message, text, given, surveys)
    # Templates may leave out `html`; mail clients show the HTML part when there is one.
    markup = given or _html_of(text)
    if tracking is not None:
        tracker = LinkTracker(tracking, message)
        text, markup = tracker.text(text), tracker.pixel(tracker.html(markup))
    email.set_content(text)
    email.add_alternative(markup, subtype="html")
    return email


def _with_survey_links(
    message: OutboundMessage, text: str, markup: str | None, surveys: SurveyLinks
) -> tuple[str, str | None]:
    """The text and the template's HTML (None: made from the text) with the survey's links."""
    survey = str(message.survey)
    ticket = SurveyTicket(
        message.customer_id, message.message_id, survey, message.journey, message.step, "email"
    )
    url = surveys.url(ticket)
    if SURVEY_PLACEHOLDER in text:
        text = text.replace(SURVEY_PLACEHOLDER, url)
    else:
        text = f"{text.rstrip()}\n\nYour answer: {url}\n"
    if markup is None or SURVEY_PLACEHOLDER in markup:
        return text, None if markup is None else markup.replace(
            SURVEY_PLACEHOLDER, html.escape(url)
        )
    low, high = SCALES[survey]
    scores = " ".join(
        f'<a href="{html.escape(url)}?score={n}">{n}</a>' for n in range(low, high + 1)
    )
    block = f'<p class="survey">{scores}</p>\n'
    head, found, tail = markup.rpartition("</body>")
    return text, (head + block + found + tail) if found else markup + block


def _anchor(url: str) -> str:
    return f'<a href="{url}">{url}</a>'


def _html_of(text: str) -> str:
    # URLs become links (as mail clients would show them), so they can be tracked too.
    paragraphs = (
        "<p>"
        + replace_urls(html.escape(block, quote=False), _anchor).replace("\n", "<br>\n")
        + "</p>"
        for block in text.strip().split("\n\n")
    )
    return "<!doctype html>\n<html><body>\n" + "\n".join(paragraphs) + "\n</body></html>\n"


class EmailConnector:
    """Sends through `ORCHESTRATOR_SMTP_HOST`:`PORT`, on a few reused SMTP sessions
    (`connectors/smtp_pool.py`); with `bounces`, from each message's VERP envelope sender
    (`connectors/verp.py`), the `From:` header unchanged."""

    channel = "email"

    def __init__(
        self,
        settings: Settings,
        links: UnsubscribeLinks,
        surveys: SurveyLinks,
        tracking: TrackingTokens | None = None,
        bounces: BounceAddresses | None = None,
    ) -> None:
        """`tracking`: track links and opens (`ORCHESTRATOR_EMAIL_TRACKING`); `bounces`:
        VERP envelope senders (`ORCHESTRATOR_BOUNCE_DOMAIN`)."""
        if not settings.smtp_from:
            raise ConfigurationError(
                "the email channel needs a sender: set ORCHESTRATOR_SMTP_FROM "
                "(e.g. 'Northwind <hello@northwind.example>')"
            )
        self.settings = settings
        self.sender = settings.smtp_from
        self.mailbox = settings.smtp_unsubscribe_mailbox or _address_of(settings.smtp_from)
        self.links = links
        self.surveys = surveys
        self.tracking = tracking
        self.bounces = bounces
        self.sessions = SmtpSessionPool(settings)

    def provider(self, message: OutboundMessage) -> str:
        """One SMTP relay for every email."""
        return provider_of(self.channel, message.content)

    async def deliver(self, message: OutboundMessage) -> Outcome:
        """Hand the email to the relay; 5xx answers are permanent, 4xx and outages retried."""
        if not message.to:
            return Permanent("no_address", "the customer's profile has no email address")
        email = build_email(
            message,
            self.sender,
            self.mailbox,
            self.links,
            surveys=self.surveys,
            tracking=self.tracking,
        )
        try:
            sender = None if self.bounces is None else self.bounces.address(message.message_id)
            await self.sessions.send(email, sender)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients[0]
            return _answer(refused.code, refused.message, recipient=True)
        except aiosmtplib.SMTPResponseException as exc:
            return _answer(exc.code, exc.message)
        except SessionsBusyError as exc:
            # Our own queue, not the relay's trouble: its circuit is not told.
            return Retry("smtp_busy", str(exc), provider_trouble=False)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return Retry("smtp_unavailable", f"{type(exc).__name__}: {exc}")
        return Delivered(f"{message.message_id}")

    async def aclose(self) -> None:
        """Say QUIT on the open SMTP sessions."""
        await self.sessions.aclose()


def _answer(code: int, text: str, recipient: bool = False) -> Outcome:
    # 421 (service closing) and 454 (TLS not available) are the relay's trouble; other 4xx
    # (mailbox busy, greylisting) are about this message only. A refusal of the recipient
    # (at RCPT TO) is a bounce: hard for 5xx (no such user), soft for 4xx (mailbox full).
    if code >= 500:
        return Permanent(f"smtp_{code}", text, bounce="hard" if recipient else None)
    return Retry(
        f"smtp_{code}",
        text,
        provider_trouble=code in (421, 454),
        bounce="soft" if recipient else None,
    )


def _address_of(sender: str) -> str:
    return sender.rpartition("<")[2].rstrip(">").strip()
