"""Signed survey answer links, made by the email connector, checked by the API.

A survey email carries one link per score; each opens `GET {PUBLIC_URL}/v1/s/{token}?score=N`,
which publishes `survey.answered` and shows a thank-you page. The token says which message
is answered, and nobody must forge one for another customer, so it carries the message's
identity and an HMAC-SHA256 over it:

    token = base64url(JSON [customer_id, message_id, survey, journey, step, channel])
            "." base64url(HMAC(key, context || that JSON))

(`infra/signedtoken.py`; only its canonical spelling opens). The score is not signed: the
customer chooses it. The key is 32 random bytes created once in Redis (`SET NX`,
`infra/sharedsecret.py`) and shared by connectors and the API, as the unsubscribe key is.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

from orchestrator import jsonwire
from orchestrator.errors import ConfigurationError
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.redisclient import RedisClient
from orchestrator.infra.sharedsecret import shared_secret
from orchestrator.infra.signedtoken import BadTokenError, open_token, seal

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
        return seal(self._key(), _CONTEXT, jsonwire.dumps(astuple(ticket)))

    def verify(self, token: str) -> SurveyTicket | None:
        """The ticket a token names if this key signed it, else None; constant-time."""
        try:
            payload = open_token(self._key(), _CONTEXT, token)
        except BadTokenError:
            return None
        fields = jsonwire.loads(payload)
        return SurveyTicket(*(str(f) for f in fields))

    def _key(self) -> bytes:
        if self._secret is None:
            raise ConfigurationError(
                "the survey link key is not loaded: call `await SurveyLinks.load(redis, keys)` "
                "first"
            )
        return self._secret
