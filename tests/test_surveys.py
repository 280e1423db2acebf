"""NPS and CSAT from a fixed answer set, reply parsing, link signing, the terminal tables."""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from rich.console import Console

from connectors.mail import build_email
from orchestrator.contracts.outbound import OUTBOUND_MESSAGE
from orchestrator.contracts.surveys import (
    SURVEY_ANSWERED,
    InvalidScoreError,
    SurveyAnswer,
    check_score,
    reply_answer,
)
from orchestrator.engine.events import parse_event
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.settings import Settings
from orchestrator.infra.surveylinks import SurveyLinks, SurveyTicket
from orchestrator.infra.unsubscribe import UnsubscribeLinks
from orchestrator.measure.survey_report import render
from orchestrator.measure.surveys import Answer, iso_week, latest_answers, survey_figures
from tests.connector_harness import outbound
from tests.runtime_harness import isolated_settings, redis_client

# Monday 2026-06-01 is in ISO week 23; Sunday 2026-06-07 too; Monday 2026-06-08 is week 24.
MON = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
SUN = datetime(2026, 6, 7, 23, 59, tzinfo=UTC)
NEXT_MON = datetime(2026, 6, 8, 0, 0, tzinfo=UTC)


def _answers(survey: str, scores: list[int], at: datetime, channel: str) -> list[Answer]:
    return [
        Answer(
            record_id=f"in:{survey}-{channel}-{at:%d}-{n}",
            at=at,
            customer_id=f"c{n}",
            survey=survey,
            score=score,
            channel=channel,
            journey="j1",
            message_id=f"m-{survey}-{channel}-{at:%d}-{n}",
        )
        for n, score in enumerate(scores)
    ]


def test_nps_and_csat_equal_hand_computed_values() -> None:
    answers = [
        # 10 answers: promoters 10, 9, 9, 10 (4); passives 8, 7 (2); detractors 6, 3, 0, 5 (4)
        *_answers("nps", [10, 9, 9, 8, 7, 6, 3, 0, 10, 5], MON, "sms"),
        # Sunday is still week 23: 2 promoters, 1 passive -> (2 - 0) / 3 = 66.67
        *_answers("nps", [9, 10, 8], SUN, "email"),
        # Week 24: 1 detractor of 1 -> -100
        *_answers("nps", [6], NEXT_MON, "sms"),
        # CSAT: 5, 4, 5 satisfied of 5 -> 60 %
        *_answers("csat", [5, 4, 3, 2, 5], MON, "email"),
    ]
    figures = asdict(survey_figures(answers))
    nps = {(r["week"], r["channel"]): r for r in figures["nps"]}
    assert nps[("2026-W23", "sms")] == {
        "week": "2026-W23", "journey": "j1", "channel": "sms", "responses": 10,
        "promoters": 4, "passives": 2, "detractors": 4, "score": 0.0,
    }  # fmt: skip
    email = nps[("2026-W23", "email")]
    assert (email["promoters"], email["passives"], email["detractors"]) == (2, 1, 0)
    assert email["score"] == pytest.approx(200 / 3)
    assert nps[("2026-W24", "sms")]["score"] == -100.0
    assert figures["csat"] == [
        {"week": "2026-W23", "journey": "j1", "channel": "email", "responses": 5,
         "satisfied": 3, "score": 60.0},
    ]  # fmt: skip


def test_a_message_answered_twice_counts_once_with_its_latest_answer() -> None:
    first = Answer("in:a", MON, "ada", "nps", 3, "email", "j1", "ask", "m1")
    second = Answer("in:b", SUN, "ada", "nps", 10, "email", "j1", "ask", "m1", "changed my mind")
    other = Answer("in:c", MON, "bob", "nps", 3, "email", "j1", "ask", "m1")
    loose = [Answer(f"in:l{n}", MON, "cy", "nps", 9, "api") for n in range(2)]
    assert latest_answers([second, first, other, *loose]) == [other, *loose, second]
    figures = survey_figures([first, second, other])
    [row] = figures.nps
    assert (row.responses, row.promoters, row.detractors) == (2, 1, 1)
    assert [(c.customer_id, c.text, c.score) for c in figures.comments] == [
        ("ada", "changed my mind", 10)
    ]


def test_iso_weeks_follow_iso_8601_across_the_year_end() -> None:
    assert iso_week(datetime(2027, 1, 1, 12, tzinfo=UTC)) == "2026-W53"
    assert iso_week(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-W01"
    assert iso_week(datetime(2024, 12, 30, tzinfo=UTC)) == "2025-W01"


@pytest.mark.parametrize(
    ("survey", "text", "expected"),
    [
        ("nps", "9", (9, "")),
        ("nps", "9 great service", (9, "great service")),
        ("nps", "10!", (10, "")),
        ("nps", " 0 - never again ", (0, "never again")),
        ("nps", "9/10 love it", (9, "love it")),
        ("nps", "11", None),
        ("nps", "100", None),
        ("nps", "9.5", None),
        ("nps", "great, 9", None),
        ("nps", "", None),
        ("csat", "5 thanks", (5, "thanks")),
        ("csat", "0", None),
        ("csat", "6", None),
    ],
)
def test_a_reply_is_an_answer_when_it_starts_with_a_score_on_the_scale(
    survey: str, text: str, expected: tuple[int, str] | None
) -> None:
    assert reply_answer(survey, text) == expected


@pytest.mark.parametrize(("survey", "score"), [("nps", -1), ("nps", 11), ("csat", 0),
                                               ("csat", 6), ("ces", 3), ("nps", True)])  # fmt: skip
def test_scores_off_the_scale_are_refused(survey: str, score: int) -> None:
    with pytest.raises(InvalidScoreError):
        check_score(survey, score)


def test_the_event_is_an_ordinary_event_with_a_deterministic_id() -> None:
    answer = SurveyAnswer("ada", "nps", 9, "sms", "great", "j1", "ask", "m1")
    event = answer.event(1_780_000_000.0, "SM1")
    # The same answer (a redelivered webhook) is the same event, whenever it is made.
    assert event.event_id == answer.event(1_780_000_001.0, "SM1").event_id
    assert event.event_id != answer.event(1_780_000_000.0, "SM2").event_id
    assert parse_event(event.to_wire()) == event
    assert event.name == SURVEY_ANSWERED
    assert event.properties == {
        "survey": "nps", "score": 9, "comment": "great", "journey": "j1", "step": "ask",
        "message_id": "m1", "channel": "sms",
    }  # fmt: skip
    with pytest.raises(InvalidScoreError):
        SurveyAnswer("ada", "csat", 9, "sms").event(0.0)


def test_the_terminal_report_shows_each_figure() -> None:
    answers = [
        *_answers("nps", [10, 9, 9, 8, 7, 6, 3, 0, 10, 5], MON, "sms"),
        *_answers("csat", [5, 4, 3, 2, 5], MON, "email"),
        Answer("in:x", SUN, "ada", "nps", 2, "in_app", "j1", "ask", "mx", "too slow"),
    ]
    console = Console(record=True, width=140)
    render(console, survey_figures(answers))
    text = console.export_text()
    assert "2026-W23" in text and "+0.0" in text and "-100.0" in text
    assert "60.0" in text and "too slow" in text
    empty = Console(record=True, width=80)
    render(empty, survey_figures([]))
    assert "no answers yet" in empty.export_text()


def _part(email: EmailMessage, kind: str) -> str:
    body = email.get_body((kind,))
    assert body is not None, f"no {kind} part"
    return str(body.get_content())


async def test_survey_links_are_signed_and_appended_when_the_template_places_none(
    infrastructure: Settings,
) -> None:
    settings = isolated_settings(infrastructure)
    keys = RedisKeys(settings.redis_prefix)
    links, unsubscribe = SurveyLinks("https://o.example/"), UnsubscribeLinks("https://o.example")
    async with redis_client(settings) as redis:
        await links.load(redis, keys)
        await unsubscribe.load(redis, keys)
        other = SurveyLinks("https://o.example")  # another deployment: another key
        await other.load(redis, RedisKeys(settings.redis_prefix + "other:"))
    content = {"subject": "Q", "body": "Rate us.", "html": "<html><body>Rate us.</body></html>"}
    record = outbound("ada", "email", "ada@x.example", content)
    message = OUTBOUND_MESSAGE.validate_python({**record, "survey": "nps"})
    email = build_email(message, "a@o.example", "u@o.example", unsubscribe, surveys=links)
    text = _part(email, "plain")
    [url] = re.findall(r"Your answer: (\S+)", text)
    token = url.removeprefix("https://o.example/v1/s/")
    assert links.verify(token) == SurveyTicket(
        "ada", message.message_id, "nps", "test-journey", "hello", "email"
    )
    # The template's HTML gets one link per score; HTML made from the text links the page.
    markup = _part(email, "html")
    assert re.findall(r'href="([^"]+)\?score=(\d+)"', markup) == [(url, str(n)) for n in range(11)]
    assert markup.rstrip().endswith("</p>\n</body></html>")
    text_only = OUTBOUND_MESSAGE.validate_python(
        {**record, "content": {"subject": "Q", "body": "Rate us."}, "survey": "csat"}
    )
    derived = _part(build_email(text_only, "a@o.example", "u@o.example", unsubscribe,
                                surveys=links), "html")  # fmt: skip
    [page] = re.findall(r'href="(https://o\.example/v1/s/[^"?]+)"', derived)
    assert links.verify(page.rpartition("/")[2]) is not None
    assert other.verify(token) is None
    payload, _, signature = token.partition(".")
    forged = SurveyTicket("bob", message.message_id, "nps", "test-journey", "hello", "email")
    forged_payload = other.token(forged).partition(".")[0]
    assert links.verify(f"{forged_payload}.{signature}") is None
    assert links.verify(payload) is None and links.verify("..") is None
    # A message asking no survey gets no link.
    plain = build_email(OUTBOUND_MESSAGE.validate_python(record), "a@o.example", "u@o.example",
                        unsubscribe, surveys=links)  # fmt: skip
    assert "/v1/s/" not in _part(plain, "plain")
