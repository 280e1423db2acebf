"""Surveys over HTTP: the figures (operators), and the signed answer links (anyone).

- `GET /v1/measure/surveys`: NPS and CSAT per ISO week, journey and channel, with counts
  and comments, computed from the audit store (`orchestrator/measure/`).
- `GET /v1/s/{token}?score=N`: a survey email's link (`infra/surveylinks.py`). No API key
  (a customer clicks it): the token's HMAC proves which message it answers, and a bad one
  gets 403 `bad_signature` with nothing published. It publishes `survey.answered` and
  answers a small thank-you page with a comment form, which POSTs to the same URL.

A score off the survey's scale is a 422 `invalid_score` and publishes nothing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from html import escape
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Query, Request, Security
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from orchestrator.api.access import authorize
from orchestrator.api.errors import ApiError, error_responses
from orchestrator.api.ingest import publish_all
from orchestrator.api.redaction import MASK
from orchestrator.api.state import AppState, app_state
from orchestrator.contracts.surveys import SCALES, InvalidScoreError, SurveyAnswer
from orchestrator.control.keys import ApiKey
from orchestrator.control.records import ApiRecord, data_access_record, send_records
from orchestrator.infra.surveylinks import SURVEY_PATH, SurveyTicket
from orchestrator.measure.survey_answers import read_answers
from orchestrator.measure.surveys import Comment, CsatRow, NpsRow, survey_figures
from orchestrator.timefmt import format_instant

__all__ = ["answer_router", "router"]

router = APIRouter(
    tags=["measure"], dependencies=[Security(authorize)], responses=error_responses({})
)
answer_router = APIRouter(
    tags=["surveys"],
    responses=error_responses(
        {403: "The link is not one we signed", 422: "The score is off the survey's scale"}
    ),
)

# The pages are documented beside the JSON errors (a route-wide HTML response class would
# document the errors as HTML too).
_HTML: dict[int | str, dict[str, Any]] = {
    200: {"description": "a page", "content": {"text/html": {"schema": {"type": "string"}}}}
}
# What a comment may hold: a paragraph or two, not a document.
_MAX_COMMENT = 2000


class SurveyFiguresOut(BaseModel):
    """NPS and CSAT rows by week, journey and channel; comments newest first; and how many
    stored answers could not be read (erased customers, malformed answers)."""

    nps: list[NpsRow]
    csat: list[CsatRow]
    comments: list[Comment]
    unreadable: int


@router.get("/v1/measure/surveys", name="survey_figures", response_model=SurveyFiguresOut)
async def get_survey_figures(
    *,
    state: Annotated[AppState, Depends(app_state)],
    caller: Annotated[ApiKey, Security(authorize)],
    journey: str | None = None,
    channel: str | None = None,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: datetime | None = None,
) -> SurveyFiguresOut:
    """The figures of the answers stored in `[from, until)`, of `journey` and `channel`
    when given.

    Comment texts are personal data: masked (`***`) for operators without the `pii` grant;
    shown to the others, each read recorded as a `data_access` interaction.
    """
    for name, value in (("from", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise ApiError(
                422, "invalid_request", f"{name} has no time zone: give e.g. 2026-05-01T00:00:00Z"
            )
    async with state.database.connection() as conn:
        read = await read_answers(
            conn, state.personal, journey=journey, channel=channel, since=since, until=until
        )
    figures = survey_figures(read.answers)
    comments = figures.comments
    if state.redactor.sees_personal(caller):
        await _record_reads(state, caller, {c.customer_id for c in comments})
    else:
        comments = [replace(c, text=MASK) for c in comments]
    return SurveyFiguresOut(
        nps=figures.nps, csat=figures.csat, comments=comments, unreadable=read.unreadable
    )


async def _record_reads(state: AppState, caller: ApiKey, customers: set[str]) -> None:
    at = format_instant(state.clock.now())
    reader = state.operator_name(caller.name, caller.key_id)
    records: list[ApiRecord] = [
        data_access_record(c, at, reader, ["survey.comments"]) for c in sorted(customers)
    ]
    if records:
        async with state.call():
            publisher = await state.publisher()
            await send_records(state.settings, records, publisher.producer)


async def _ticket(state: AppState, token: str) -> SurveyTicket:
    async with state.redis_call():
        await state.survey_links.load(state.redis, state.keys)
    ticket = state.survey_links.verify(token)
    if ticket is None:
        raise ApiError(403, "bad_signature", "this survey link is not one we signed")
    return ticket


def _score(text: str) -> int:
    try:
        return int(text)
    except ValueError as exc:
        raise ApiError(
            422, "invalid_score", f"the score {text!r} is not a whole number: answer again"
        ) from exc


async def _answer(state: AppState, ticket: SurveyTicket, score: int, comment: str) -> None:
    answer = SurveyAnswer(
        customer_id=ticket.customer_id,
        survey=ticket.survey,
        score=score,
        channel=ticket.channel,
        comment=comment.strip()[:_MAX_COMMENT],
        journey=ticket.journey,
        step=ticket.step,
        message_id=ticket.message_id,
    )
    try:
        event = answer.event(state.clock.now())
    except InvalidScoreError as exc:
        raise ApiError(422, "invalid_score", str(exc)) from exc
    await publish_all(state, [event])


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        '<!doctype html>\n<html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title></head>\n<body>\n<h1>{escape(title)}</h1>\n"
        f"{body}\n</body></html>\n"
    )


def _chooser(link: str, survey: str) -> HTMLResponse:
    low, high = SCALES.get(survey, (0, -1))
    links = " ".join(f'<a href="{link}?score={n}">{n}</a>' for n in range(low, high + 1))
    return _page("Your answer", f"<p>{links}</p>")


def _thanks(link: str, score: int, commented: bool) -> HTMLResponse:
    said = f"<p>You answered {score}.</p>"
    if commented:
        return _page("Thank you", said + "<p>We have your comment too.</p>")
    form = (
        f'<form method="post" action="{link}">'
        f'<input type="hidden" name="score" value="{score}">'
        '<p><label for="comment">Anything you would like to add?</label></p>'
        f'<p><textarea id="comment" name="comment" rows="4" cols="50" '
        f'maxlength="{_MAX_COMMENT}"></textarea></p>'
        '<p><button type="submit">Send</button></p></form>'
    )
    return _page("Thank you", said + form)


@answer_router.get(f"{SURVEY_PATH}/{{token}}", name="survey_link_answer", responses=_HTML)
async def survey_link_answer(
    token: str,
    state: Annotated[AppState, Depends(app_state)],
    score: Annotated[str | None, Query(description="the score chosen")] = None,
) -> HTMLResponse:
    """Record the score the link names and thank the customer (with a comment form);
    without `score`, a page offering each score of the survey's scale."""
    ticket = await _ticket(state, token)
    link = escape(state.survey_links.url_of(token))
    if score is None:
        return _chooser(link, ticket.survey)
    value = _score(score)
    await _answer(state, ticket, value, "")
    return _thanks(link, value, commented=False)


@answer_router.post(f"{SURVEY_PATH}/{{token}}", name="survey_link_comment", responses=_HTML)
async def survey_link_comment(
    token: str, request: Request, state: Annotated[AppState, Depends(app_state)]
) -> HTMLResponse:
    """The thank-you page's form (`score`, `comment`, form-encoded): the answer again, with
    the comment (it replaces the answer without one in the figures)."""
    ticket = await _ticket(state, token)
    form = dict(parse_qsl((await request.body()).decode("utf-8", errors="replace")))
    score, comment = _score(form.get("score", "")), form.get("comment", "")
    await _answer(state, ticket, score, comment)
    link = escape(state.survey_links.url_of(token))
    return _thanks(link, score, commented=bool(comment.strip()))
