"""NPS and CSAT from survey answers, per ISO week, journey and channel (pure: no I/O).

- **NPS** (0-10): promoters answer 9 or 10, passives 7 or 8, detractors 0 to 6; the score
  is `100 * (promoters - detractors) / responses`, from -100 to 100.
- **CSAT** (1-5): satisfied customers answer 4 or 5; the score is
  `100 * satisfied / responses`, from 0 to 100.

One response per message answered: a customer who answers the same message again (a second
SMS reply, another score clicked) replaces their answer, so only each message's latest
answer counts. Answers that name no message (published straight to `/v1/events`) each count.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from orchestrator.timefmt import format_instant

__all__ = [
    "Answer",
    "Comment",
    "CsatRow",
    "NpsRow",
    "SurveyFigures",
    "iso_week",
    "latest_answers",
    "survey_figures",
]

_PROMOTER = 9
_PASSIVE = 7
_SATISFIED = 4


@dataclass(frozen=True, slots=True)
class Answer:
    """One `survey.answered` event as stored (its `record_id` is unique)."""

    record_id: str
    at: datetime
    customer_id: str
    survey: str
    score: int
    channel: str
    journey: str = ""
    step: str = ""
    message_id: str = ""
    comment: str = ""


@dataclass(frozen=True, slots=True)
class NpsRow:
    """NPS of one (week, journey, channel)."""

    week: str
    journey: str
    channel: str
    responses: int
    promoters: int
    passives: int
    detractors: int
    score: float


@dataclass(frozen=True, slots=True)
class CsatRow:
    """CSAT of one (week, journey, channel)."""

    week: str
    journey: str
    channel: str
    responses: int
    satisfied: int
    score: float


@dataclass(frozen=True, slots=True)
class Comment:
    """A free-text comment given with a counted answer."""

    at: str
    journey: str
    channel: str
    survey: str
    score: int
    text: str
    customer_id: str


@dataclass(frozen=True, slots=True)
class SurveyFigures:
    """Rows ordered by week, journey, channel; comments newest first."""

    nps: list[NpsRow]
    csat: list[CsatRow]
    comments: list[Comment]


def iso_week(at: datetime) -> str:
    """`2026-W49`: the ISO 8601 week of `at` (weeks start on Monday; UTC for the store)."""
    year, week, _ = at.astimezone(UTC).isocalendar()
    return f"{year}-W{week:02d}"


def latest_answers(answers: Iterable[Answer]) -> list[Answer]:
    """Each message's latest answer (ties: the later one given), and every answer naming
    no message; in time order."""
    kept: dict[tuple[str, str], Answer] = {}
    for answer in answers:
        key = (
            (answer.customer_id, answer.message_id) if answer.message_id else ("", answer.record_id)
        )
        held = kept.get(key)
        if held is None or answer.at >= held.at:
            kept[key] = answer
    return sorted(kept.values(), key=lambda a: (a.at, a.record_id))


def _percent(part: int, whole: int) -> float:
    return 100.0 * part / whole


def survey_figures(answers: Iterable[Answer]) -> SurveyFigures:
    """NPS and CSAT rows and the comments of `answers` (deduplicated by `latest_answers`)."""
    counted = latest_answers(answers)
    groups: dict[tuple[str, str, str, str], list[int]] = defaultdict(list)
    for answer in counted:
        key = (answer.survey, iso_week(answer.at), answer.journey, answer.channel)
        groups[key].append(answer.score)
    nps: list[NpsRow] = []
    csat: list[CsatRow] = []
    for (survey, week, journey, channel), scores in sorted(groups.items()):
        n = len(scores)
        if survey == "nps":
            promoters = sum(s >= _PROMOTER for s in scores)
            detractors = sum(s < _PASSIVE for s in scores)
            passives = n - promoters - detractors
            score = _percent(promoters - detractors, n)
            nps.append(NpsRow(week, journey, channel, n, promoters, passives, detractors, score))
        else:
            satisfied = sum(s >= _SATISFIED for s in scores)
            csat.append(CsatRow(week, journey, channel, n, satisfied, _percent(satisfied, n)))
    comments = [
        Comment(
            at=format_instant(a.at.timestamp()),
            journey=a.journey,
            channel=a.channel,
            survey=a.survey,
            score=a.score,
            text=a.comment,
            customer_id=a.customer_id,
        )
        for a in reversed(counted)
        if a.comment
    ]
    return SurveyFigures(nps, csat, comments)
