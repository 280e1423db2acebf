"""A local stand-in for FCM HTTP v1 and Google's OAuth2 token endpoint.

`POST /token` takes the JWT bearer grant (RFC 7523), checks the assertion's RS256 signature
with the service account's public key, its issuer, audience, scope and lifetime, and issues an
access token. `POST /v1/projects/{project}/messages:send` takes only tokens it issued (401
`UNAUTHENTICATED` otherwise) and answers FCM's success and error bodies. Device tokens
starting `dev-` are valid; any other is `INVALID_ARGUMENT`, one in `unregistered` is
`UNREGISTERED`.
"""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from orchestrator import jsonwire
from orchestrator.dev.standins.local import serve_locally

__all__ = ["FcmAnswer", "FcmStandIn", "fcm_error", "write_service_account"]

_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Google's documented scope for FCM: spelled out here, not taken from the connector, so the
# stand-in checks what the connector asks for.
_FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
_FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
# The HTTP status and google.rpc status FCM answers with each errorCode.
_STATUS = {
    "UNREGISTERED": (404, "NOT_FOUND"),
    "INVALID_ARGUMENT": (400, "INVALID_ARGUMENT"),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED"),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED"),
    "UNAVAILABLE": (503, "UNAVAILABLE"),
    "INTERNAL": (500, "INTERNAL"),
}


def fcm_error(error_code: str, message: str) -> tuple[int, dict[str, Any]]:
    """FCM's error answer for an `errorCode`: HTTP status and body."""
    status, rpc = _STATUS[error_code]
    body = {
        "error": {
            "code": status,
            "message": message,
            "status": rpc,
            "details": [{"@type": _FCM_ERROR_TYPE, "errorCode": error_code}],
        }
    }
    return status, body


def write_service_account(path: Path, token_uri: str) -> rsa.RSAPrivateKey:
    """A service account file with a fresh RSA key (as Google's console writes one)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    account = {
        "type": "service_account",
        "project_id": "northwind-app",
        "private_key_id": uuid.uuid4().hex,
        "private_key": pem,
        "client_email": "orchestrator@northwind-app.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": token_uri,
    }
    path.write_bytes(jsonwire.dumps(account))
    return key


@dataclass(frozen=True, slots=True)
class FcmAnswer:
    """A scripted error answer for one device token (then success)."""

    error_code: str
    retry_after: str | None = None


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@dataclass
class FcmStandIn:
    """FCM for `project`, trusting assertions signed by `public_key` from `client_email`."""

    project: str
    public_key: rsa.RSAPublicKey | None = None
    client_email: str = "orchestrator@northwind-app.iam.gserviceaccount.com"
    token_lifetime: int = 3600
    script: dict[str, list[FcmAnswer]] = field(default_factory=dict)
    unregistered: set[str] = field(default_factory=set)
    issued: set[str] = field(default_factory=set)
    requests: list[dict[str, Any]] = field(default_factory=list)
    arrivals: list[tuple[float, str]] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    base_url: str = ""
    _runner: web.AppRunner | None = None

    @property
    def token_url(self) -> str:
        """Where the token endpoint is served."""
        return f"{self.base_url}/token"

    async def start(self) -> str:
        """Serve on a free port of 127.0.0.1; returns the base URL."""
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_post("/v1/projects/{project}/messages:send", self._send)
        self._runner, self.base_url = await serve_locally(app)
        return self.base_url

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()

    def _assertion_error(self, assertion: str) -> str | None:
        try:
            header_b64, claims_b64, signature_b64 = assertion.split(".")
            header = jsonwire.loads(_unb64(header_b64))
            claims = jsonwire.loads(_unb64(claims_b64))
            signature = _unb64(signature_b64)
        except ValueError:
            return "malformed assertion"
        if header.get("alg") != "RS256" or self.public_key is None:
            return "unsupported algorithm"
        try:
            self.public_key.verify(
                signature,
                f"{header_b64}.{claims_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            return "Invalid JWT Signature."
        now = time.time()
        if claims.get("iss") != self.client_email or claims.get("aud") != self.token_url:
            return "Invalid issuer or audience"
        if claims.get("scope") != _FCM_SCOPE or not claims.get("iat", now + 1) <= now:
            return "Invalid scope or issue time"
        if not now < claims.get("exp", 0) <= claims["iat"] + 3600:
            return "Invalid JWT: Token must be a short-lived token (60 minutes)"
        return None

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != _GRANT:
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        problem = self._assertion_error(str(form.get("assertion", "")))
        if problem is not None:
            return web.json_response(
                {"error": "invalid_grant", "error_description": problem}, status=400
            )
        token = "ya29." + secrets.token_urlsafe(32)
        self.issued.add(token)
        return web.json_response(
            {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}
        )

    async def _send(self, request: web.Request) -> web.Response:
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if bearer not in self.issued or request.match_info["project"] != self.project:
            body = {
                "error": {
                    "code": 401,
                    "message": "Request had invalid authentication credentials.",
                    "status": "UNAUTHENTICATED",
                }
            }
            return web.json_response(body, status=401)
        payload = await request.json()
        self.requests.append(payload)
        message = payload.get("message") or {}
        device = str(message.get("token", ""))
        self.arrivals.append((time.monotonic(), device))
        scripted = self.script.get(device)
        answer = scripted.pop(0) if scripted else None
        if answer is None and device in self.unregistered:
            answer = FcmAnswer("UNREGISTERED")
        if answer is None and not device.startswith("dev-"):
            answer = FcmAnswer("INVALID_ARGUMENT")
        if answer is not None:
            status, body = fcm_error(answer.error_code, f"{answer.error_code} for {device}")
            headers = {"Retry-After": answer.retry_after} if answer.retry_after else None
            return web.json_response(body, status=status, headers=headers)
        self.accepted.append(message)
        name = f"projects/{self.project}/messages/0:{uuid.uuid4().hex}"
        return web.json_response({"name": name})
