"""Tokens that travel in URLs and prove we made them: survey links and tracking links.

    token = base64url(payload) "." base64url(HMAC-SHA256(key, context || payload))

both unpadded. `context` separates the uses, so a MAC made for one kind of token is good for
nothing else.

Only the canonical spelling of a token opens. Base64 decoders ignore the spare low bits of the
last character and skip characters outside the alphabet, so comparing decoded bytes would
accept several spellings of one token (a link with its last character changed from `A` to `B`
still opened). Comparing the encoded text instead makes a token exactly one string.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from orchestrator.errors import OrchestratorError

__all__ = ["BadTokenError", "open_token", "seal"]

_MAC_CHARS = len(base64.urlsafe_b64encode(bytes(hashlib.sha256().digest_size)).rstrip(b"="))


class BadTokenError(OrchestratorError):
    """A token that is not one we made: `forged` (well-formed, wrong MAC) or malformed."""

    def __init__(self, message: str, forged: bool) -> None:
        super().__init__(message)
        self.forged = forged


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _mac_text(secret: bytes, context: bytes, payload: bytes) -> str:
    return _b64(hmac.new(secret, context + payload, hashlib.sha256).digest())


def seal(secret: bytes, context: bytes, payload: bytes) -> str:
    """The token carrying `payload`, signed with `secret` for the use `context` names."""
    return f"{_b64(payload)}.{_mac_text(secret, context, payload)}"


def open_token(secret: bytes, context: bytes, token: str) -> bytes:
    """The payload of a token `seal` made with this key and context.

    Raises `BadTokenError` (`forged=False`) for a token of the wrong shape or spelling, and
    (`forged=True`) for a well-formed one whose MAC is not ours; constant-time in the MAC.
    """
    encoded, dot, signature = token.partition(".")
    try:
        payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError) as exc:
        raise BadTokenError("not a token we make: its payload is not base64url", False) from exc
    if not dot or _b64(payload) != encoded or len(signature) != _MAC_CHARS:
        raise BadTokenError("not a token we make: wrong shape", forged=False)
    expected = _mac_text(secret, context, payload).encode()
    # As bytes: compare_digest refuses non-ASCII str, and a forged link may carry any.
    if not hmac.compare_digest(expected, signature.encode("utf-8", "surrogateescape")):
        raise BadTokenError("this token is not one we signed", forged=True)
    return payload
