"""Demo customers answering their SMS: a STOP, a score, a few words, or silence.

They answer the delivery-feedback question (the demo's own journey, `journeys/` beside this
module) the moment it reaches their phone, i.e. the Twilio stand-in, which posts each answer
to the API's inbound webhook signed as Twilio does. Who answers what is fixed by the
customer's number, so every run tells the same story.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from orchestrator.dev.standins.twilio import TwilioStandIn

__all__ = ["FEEDBACK_QUESTION", "Repliers"]

# How the demo journey's question starts (templates/feedback_ask.yaml).
FEEDBACK_QUESTION = "Northwind: order "
_WORDS = (
    "The lamp arrived scratched, the box was fine",
    "Quick delivery, friendly driver",
    "Took a week longer than promised",
    "Lovely table, thank you!",
)
# Real seconds between a question reaching the phone and its answer (a few virtual hours).
_READING_SECONDS = 2.0


def answer_of(number: int) -> tuple[str, str] | None:
    """(kind, text) customer `number` texts back to the question; None: no answer."""
    if number % 25 == 0:
        return "stop", "STOP"
    if number % 5 == 1:
        score = number % 11
        words = _WORDS[number // 5 % len(_WORDS)]
        return "score", f"{score}" if number % 2 else f"{score} - {words.lower()}"
    if number % 5 == 2:
        return "words", _WORDS[number // 5 % len(_WORDS)]
    return None


class Repliers:
    """Watches the SMS the Twilio stand-in accepted and sends each answer back."""

    def __init__(self, twilio: TwilioStandIn) -> None:
        self.twilio = twilio
        self.sent: Counter[str] = Counter()
        self._seen = 0
        self._replying: set[asyncio.Task[str | None]] = set()

    def poll(self) -> None:
        """Answer the questions that arrived since the last poll (each in its own task)."""
        accepted = self.twilio.accepted
        for form in accepted[self._seen :]:
            to, body = form["To"], form.get("Body", "")
            if to.startswith("whatsapp:") or not body.startswith(FEEDBACK_QUESTION):
                continue
            answer = answer_of(int(to[-5:]))
            if answer is None:
                continue
            kind, text = answer
            self.sent[kind] += 1
            task = asyncio.create_task(self._answer(to, form["From"], text))
            self._replying.add(task)
            task.add_done_callback(self._replying.discard)
        self._seen = len(accepted)

    async def _answer(self, sender: str, to: str, text: str) -> str | None:
        await asyncio.sleep(_READING_SECONDS)
        return await self.twilio.receive_sms(sender, to, text)

    async def finish(self) -> None:
        """Wait for the answers still being posted."""
        await asyncio.gather(*self._replying)
