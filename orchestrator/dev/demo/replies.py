"""Demo customers answering their SMS: a STOP, a score, a few words, or silence.

They answer the delivery-feedback question (the demo's own journey, `journeys/` beside this
module) the moment it reaches their phone, i.e. the Twilio stand-in, which posts each answer
to the API's inbound webhook signed as Twilio does. Who answers what is fixed by the
customer's number (and the words by their locale), so every run tells the same story.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass

from orchestrator.dev.standins.twilio import TwilioStandIn

__all__ = ["FEEDBACK_QUESTION", "Repliers", "Reply"]

# What the demo journey's question asks (templates/feedback_ask.yaml); order-updates' SMS
# also start "Northwind: order ...", and are not answered.
FEEDBACK_QUESTION = "How did we do, 0-10?"
# A few words in the customer's language, about what the feedback rules
# (journeys/routing/northwind.yaml) send to delivery, billing, product, support or triage.
_WORDS = {
    "en": (
        "The lamp arrived damaged, the box was fine",
        "I was charged twice for one order",
        "Took a week longer than promised, the courier never called",
        "Lovely table, thank you!",
        "The app crashes when I open my orders",
        "Your support agent was so helpful",
    ),
    "fr": (
        "Le colis est arrivé abîmé",
        "J'ai été débité deux fois pour une commande",
        "Livraison en retard d'une semaine",
        "Très belle table, merci !",
        "L'application plante quand j'ouvre mes commandes",
        "Le conseiller était très aimable",
    ),
}
# Real seconds between a question reaching the phone and its answer (a few virtual hours).
_READING_SECONDS = 2.0


def answer_of(number: int, locale: str = "en") -> tuple[str, str] | None:
    """(kind, text) customer `number` texts back to the question; None: no answer."""
    phrases = _WORDS.get(locale, _WORDS["en"])
    words = phrases[number // 5 % len(phrases)]
    if number % 25 == 0:
        return "stop", "STOP"
    if number % 5 == 1:
        score = number % 11
        return "score", f"{score}" if number % 2 else f"{score} - {words.lower()}"
    if number % 5 == 2:
        return "words", words
    return None


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer a demo customer texted back."""

    number: int  # the customer's number in the population
    locale: str
    kind: str  # stop, score or words
    text: str


class Repliers:
    """Watches the SMS the Twilio stand-in accepted and sends each answer back."""

    def __init__(self, twilio: TwilioStandIn, locales: dict[str, str]) -> None:
        self.twilio = twilio
        self.locales = locales  # phone number -> the customer's locale
        self.sent: Counter[str] = Counter()
        self.replies: list[Reply] = []
        self._seen = 0
        self._replying: set[asyncio.Task[str | None]] = set()

    def poll(self) -> None:
        """Answer the questions that arrived since the last poll (each in its own task)."""
        accepted = self.twilio.accepted
        for form in accepted[self._seen :]:
            to, body = form["To"], form.get("Body", "")
            if to.startswith("whatsapp:") or FEEDBACK_QUESTION not in body:
                continue
            number, locale = int(to[-5:]), self.locales.get(to, "en")
            answer = answer_of(number, locale)
            if answer is None:
                continue
            kind, text = answer
            self.sent[kind] += 1
            self.replies.append(Reply(number, locale, kind, text))
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
