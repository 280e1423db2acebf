"""OAuth2 access tokens for FCM from a service account (RFC 7523 JWT bearer grant).

The service account's JSON file holds `client_email`, `private_key` (PEM) and `token_uri`. We
sign a JWT (RS256, with `cryptography`) asserting the account and the FCM scope, trade it at
the token endpoint for an access token, and keep that token until shortly before it expires.
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from orchestrator import jsonwire
from orchestrator.errors import ConfigurationError, OrchestratorError

__all__ = ["FCM_SCOPE", "ServiceAccount", "TokenError", "TokenSource", "signed_assertion"]

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Google issues hour-long assertions and tokens; we renew a minute early so a token never
# expires between our check and FCM's.
_ASSERTION_SECONDS = 3600
_EARLY = 60.0


class TokenError(OrchestratorError):
    """The token endpoint refused or could not be reached; `transient` says retrying may help."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """What we need of a service account file."""

    client_email: str
    private_key: rsa.RSAPrivateKey
    token_uri: str | None

    @classmethod
    def load(cls, path: str) -> ServiceAccount:
        """Read the JSON file; a missing or unusable one is a `ConfigurationError`."""
        try:
            data = jsonwire.loads(Path(path).read_bytes())
            key = serialization.load_pem_private_key(data["private_key"].encode(), None)
            email = str(data["client_email"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigurationError(
                f"ORCHESTRATOR_FCM_SERVICE_ACCOUNT={path} is not a usable service account "
                f"JSON file (client_email, private_key): {exc}"
            ) from exc
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigurationError(f"the private key in {path} is not an RSA key")
        return cls(email, key, data.get("token_uri"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_assertion(account: ServiceAccount, audience: str, now: float) -> str:
    """The JWT (RS256) that asks `audience` for a token with the FCM scope."""
    header = {"alg": "RS256", "typ": "JWT"}
    claims = {
        "iss": account.client_email,
        "scope": FCM_SCOPE,
        "aud": audience,
        "iat": int(now),
        "exp": int(now) + _ASSERTION_SECONDS,
    }
    signing_input = f"{_b64(jsonwire.dumps(header))}.{_b64(jsonwire.dumps(claims))}"
    signature = account.private_key.sign(
        signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    return f"{signing_input}.{_b64(signature)}"


class TokenSource:
    """A cached access token, renewed by one request at a time when it nears expiry."""

    def __init__(self, account: ServiceAccount, token_url: str, client: httpx.AsyncClient) -> None:
        self.account = account
        self.token_url = token_url
        self.client = client
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self.fetched = 0  # how many tokens were obtained (the cache's effect, for tests)

    def forget(self, token: str) -> None:
        """Drop `token` (FCM refused it) so the next call fetches a new one."""
        if self._token == token:
            self._token = None

    async def token(self) -> str:
        """A live access token; raises `TokenError`."""
        async with self._lock:
            if self._token is None or time.time() >= self._expires - _EARLY:
                self._token, lifetime = await self._fetch()
                self._expires = time.time() + lifetime
                self.fetched += 1
            return self._token

    async def _fetch(self) -> tuple[str, float]:
        form = {
            "grant_type": _GRANT,
            "assertion": signed_assertion(self.account, self.token_url, time.time()),
        }
        try:
            response = await self.client.post(self.token_url, data=form)
        except httpx.TransportError as exc:
            raise TokenError(f"token endpoint unreachable: {type(exc).__name__}", True) from exc
        try:
            body: Any = jsonwire.loads(response.content)
        except jsonwire.JSONDecodeError:
            body = {}
        if response.status_code != 200 or not isinstance(body, dict):
            detail = (
                " ".join(str(body.get(k, "")) for k in ("error", "error_description")).strip()
                if isinstance(body, dict)
                else response.reason_phrase
            )
            # 5xx and 429 are the endpoint's trouble; 4xx (invalid_grant...) is ours to fix.
            transient = response.status_code >= 500 or response.status_code == 429
            raise TokenError(f"token endpoint answered {response.status_code}: {detail}", transient)
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise TokenError("token endpoint answered no access_token", True)
        return token, float(body.get("expires_in", _ASSERTION_SECONDS))
