"""Signed survey answer links, made by the email connector, checked by the API.

A survey email carries one link per score; each opens `GET {PUBLIC_URL}/v1/s/{token}?score=N`,
which publishes `survey.answered` and shows a thank-you page. The token says which message
is answered, and nobody must forge one for another customer, so it carries the message's
identity and an HMAC-SHA256 over it:

    token = base64url(JSON [customer_id, message_id, survey, journey, step, channel])
            "." base64url(HMAC(key, context || that JSON))

(both unpadded). The score is not signed: the customer chooses it. The key is 32 random
bytes created once in Redis (`SET NX`, `infra/sharedsecret.py`) and shared by connectors and
the API, as the unsubscribe key is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import astuple, dataclass

from orchestrator import jsonwire
from orchestrator.errors import ConfigurationError
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.redisclient import RedisClient
from orchestrator.infra.sharedsecret import shared_secret

__all__ = ["SURVEY_PATH", "SurveyLinks", "SurveyTicket"]

SURVEY_PATH = "/v1/s"
# Domain separation: these MACs are good for nothing but a survey link.
_CONTEXT = b"orchestrator survey v1\x00"


@dataclass(frozen=True, slots=True)
class SurveyTicket:
    """The message a survey link answers."""

    customer_id: str
    message_id: str
    survey: str
    journey: str
    step: str
    channel: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SurveyLinks:
    """Makes and checks survey links. `await load(redis, keys)` once before use."""

    def __init__(self, public_url: str) -> None:
        self.public_url = public_url.rstrip("/")
        self._secret: bytes | None = None

    async def load(self, redis: RedisClient, keys: RedisKeys) -> None:
        """Read the shared key from Redis, creating it if nobody has."""
        self._secret = await shared_secret(redis, keys.survey_key(), "survey link key")

    def url(self, ticket: SurveyTicket) -> str:
        """The link's base; append `?score=N` for each score offered."""
        return self.url_of(self.token(ticket))

    def url_of(self, token: str) -> str:
        """The public URL of a token."""
        return f"{self.public_url}{SURVEY_PATH}/{token}"

    def token(self, ticket: SurveyTicket) -> str:
        """The signed token naming `ticket`."""
        payload = jsonwire.dumps(astuple(ticket))
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def verify(self, token: str) -> SurveyTicket | None:
        """The ticket a token names if this key signed it, else None; constant-time."""
        encoded, _, signature = token.partition(".")
        try:
            payload = _unb64(encoded)
            given = _unb64(signature)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(self._mac(payload), given):
            return None
        fields = jsonwire.loads(payload)
        return SurveyTicket(*(str(f) for f in fields))

    def _mac(self, payload: bytes) -> bytes:
        if self._secret is None:
            raise ConfigurationError(
                "the survey link key is not loaded: call `await SurveyLinks.load(redis, keys)` "
                "first"
            )
        return hmac.new(self._secret, _CONTEXT + payload, hashlib.sha256).digest()
