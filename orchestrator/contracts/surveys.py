"""The `survey.answered` event: its scales, its properties, and how its id is made.

A survey question goes out as a message (a send step with `survey: nps|csat`) and comes back
as one `survey.answered` event, whatever the channel it was answered on: an SMS or WhatsApp
reply ("9 great service"), a signed link in an email, the in-app widget. Its properties:

    survey      "nps" (0-10) or "csat" (1-5)
    score       int, within the survey's scale
    comment     the free text, when there is one
    journey, step, message_id   the message answered (empty when unknown)
    channel     where the answer came from (sms, whatsapp, email, in_app, ...)

Event ids derive from what was answered, so the same answer delivered twice is applied
once; a customer who answers the same message again (a second reply, another score clicked)
publishes a second event, and the figures keep each message's latest answer.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Literal

from orchestrator.engine.events import Event
from orchestrator.errors import OrchestratorError

__all__ = [
    "SCALES",
    "SURVEY_ANSWERED",
    "InvalidScoreError",
    "SurveyAnswer",
    "SurveyKind",
    "check_score",
    "reply_answer",
]

SURVEY_ANSWERED = "survey.answered"

SurveyKind = Literal["nps", "csat"]

SCALES: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5)}
"""Each survey's lowest and highest score, both included."""

# A reply answers when it starts with a number standing alone: "9", "9 great", "10!", "9/10".
_LEADING_SCORE = re.compile(
    r"\s*(\d{1,2})(?!\d|[.,]\d)"  # one or two digits, not a longer number or a decimal
    r"(?:\s*/\s*(?:10|5)(?!\d))?"  # an optional "/10" or "/5"
    r"[\s.,;:!?)-]*(.*)",  # punctuation, then the comment
    re.S,
)


class InvalidScoreError(OrchestratorError):
    """A score outside its survey's scale, or a survey we do not know; nothing is published."""


def check_score(survey: str, score: int) -> None:
    """Raise `InvalidScoreError` unless `score` is on `survey`'s scale."""
    if survey not in SCALES:
        raise InvalidScoreError(
            f"unknown survey {survey!r}: use one of {', '.join(sorted(SCALES))}"
        )
    low, high = SCALES[survey]
    if isinstance(score, bool) or not low <= score <= high:
        raise InvalidScoreError(
            f"{survey} scores are whole numbers from {low} to {high}, not {score!r}"
        )


def reply_answer(survey: str, text: str) -> tuple[int, str] | None:
    """(score, comment) when a reply's text starts with a valid score, else None."""
    match = _LEADING_SCORE.fullmatch(text)
    if match is None:
        return None
    score = int(match.group(1))
    low, high = SCALES.get(survey, (1, 0))
    if not low <= score <= high:
        return None
    return score, match.group(2).strip()


@dataclass(frozen=True, slots=True)
class SurveyAnswer:
    """One answer, as it becomes a `survey.answered` event."""

    customer_id: str
    survey: str
    score: int
    channel: str
    comment: str = ""
    journey: str = ""
    step: str = ""
    message_id: str = ""

    def event(self, at: float, source_id: str = "") -> Event:
        """The event, its id made from the message, the score, the comment and `source_id`
        (a provider's id for a reply), so the same answer is the same event."""
        check_score(self.survey, self.score)
        digest = hashlib.sha256(
            "\x00".join(
                (self.customer_id, self.message_id, str(self.score), self.comment, source_id)
            ).encode()
        ).hexdigest()[:24]
        properties: dict[str, Any] = {
            "survey": self.survey,
            "score": self.score,
            "journey": self.journey,
            "step": self.step,
            "message_id": self.message_id,
            "channel": self.channel,
        }
        if self.comment:
            properties["comment"] = self.comment
        return Event(
            event_id=f"{SURVEY_ANSWERED}:{digest}",
            customer_id=self.customer_id,
            name=SURVEY_ANSWERED,
            occurred_at=at,
            channel=self.channel,
            properties=properties,
        )
