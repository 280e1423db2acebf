"""Survey answers read from the audit store: the inbound records of `survey.answered`.

An answer's properties are personal fields, stored encrypted under the customer's key, so
they are read through the audit store's query (which opens them). An erased customer's
answers can no longer be read and leave the figures; so do events whose properties are no
valid answer (someone publishing `survey.answered` by hand with a score off the scale):
both are counted in `AnswerRead.unreadable`, not guessed at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from orchestrator.audit.personal import PersonalFields
from orchestrator.audit.query import AuditFilter, StoredRecord, stream_records
from orchestrator.contracts.surveys import SURVEY_ANSWERED, InvalidScoreError, check_score
from orchestrator.measure.surveys import Answer

__all__ = ["AnswerRead", "answer_of", "read_answers"]


@dataclass(slots=True)
class AnswerRead:
    """The answers found, and how many records could not be read as one."""

    answers: list[Answer] = field(default_factory=list)
    unreadable: int = 0


def answer_of(stored: StoredRecord) -> Answer | None:
    """The answer an inbound record holds, or None if its properties are no valid answer."""
    event: Any = stored.record.get("event")
    properties = event.get("properties") if isinstance(event, dict) else None
    if not isinstance(properties, dict):  # "[erased]", or no properties at all
        return None
    survey, score = properties.get("survey"), properties.get("score")
    if not isinstance(survey, str) or not isinstance(score, int):
        return None
    try:
        check_score(survey, score)
    except InvalidScoreError:
        return None
    return Answer(
        record_id=stored.record_id,
        at=stored.at,
        customer_id=stored.customer_id or "",
        survey=survey,
        score=score,
        channel=str(properties.get("channel") or stored.channel or ""),
        journey=str(properties.get("journey") or ""),
        step=str(properties.get("step") or ""),
        message_id=str(properties.get("message_id") or ""),
        comment=str(properties.get("comment") or ""),
    )


async def read_answers(
    conn: psycopg.AsyncConnection[tuple[Any, ...]],
    personal: PersonalFields,
    *,
    journey: str | None = None,
    channel: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> AnswerRead:
    """Every answer stored in [since, until), of `journey` and `channel` when given."""
    # The channel is the answer's (its property), which an event published by hand may
    # leave off the event itself: so it is filtered here, as the sealed journey is.
    flt = AuditFilter(kinds=("inbound",), events=(SURVEY_ANSWERED,), since=since, until=until)
    read = AnswerRead()
    async for stored in stream_records(conn, flt, personal):
        answer = answer_of(stored)
        if answer is None:
            read.unreadable += 1
        elif journey in (None, answer.journey) and channel in (None, answer.channel):
            read.answers.append(answer)
    return read
