"""Crypto-shredding: fields marked personal are stored encrypted under the customer's own key.

Each personal value becomes `enc:v1:<base64(nonce || AES-256-GCM ciphertext)>`, with a fresh
96-bit nonce per value and the record id and field path as associated data (a ciphertext
moved to another record or field no longer opens). Erasing a customer destroys their key, so
every such value of theirs becomes unreadable while the rows, and so the hash chain, stay
as they were.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from orchestrator import jsonwire

__all__ = ["ERASED", "PersonalFields", "new_key"]

ERASED = "[erased]"
"""What a personal value reads as once its customer's key is destroyed."""

_PREFIX = "enc:v1:"
_NONCE_BYTES = 12


def new_key() -> bytes:
    """A fresh 256-bit data key for one customer."""
    return AESGCM.generate_key(bit_length=256)


class PersonalFields:
    """Seals and opens the fields named personal, wherever they occur in a record."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    @classmethod
    def from_setting(cls, text: str) -> PersonalFields:
        """From `ORCHESTRATOR_AUDIT_PERSONAL_FIELDS` (comma-separated field names)."""
        return cls(frozenset(name.strip() for name in text.split(",") if name.strip()))

    def seal(self, record: dict[str, Any], key: bytes | None, record_id: str) -> dict[str, Any]:
        """`record` with each personal value encrypted; with no key (erased) replaced by ERASED."""
        cipher = AESGCM(key) if key is not None else None

        def seal_value(value: Any, path: str) -> str:
            if cipher is None:
                return ERASED
            nonce = os.urandom(_NONCE_BYTES)
            sealed = cipher.encrypt(nonce, jsonwire.dumps(value), f"{record_id}/{path}".encode())
            return _PREFIX + base64.b64encode(nonce + sealed).decode()

        sealed: dict[str, Any] = self._walk(record, "", seal_value)
        return sealed

    def open(self, record: dict[str, Any], key: bytes | None, record_id: str) -> dict[str, Any]:
        """`record` with each sealed value decrypted; ERASED where the key is gone."""
        cipher = AESGCM(key) if key is not None else None

        def open_value(value: Any, path: str) -> Any:
            if not (isinstance(value, str) and value.startswith(_PREFIX)):
                return value
            if cipher is None:
                return ERASED
            raw = base64.b64decode(value[len(_PREFIX) :])
            try:
                plain = cipher.decrypt(
                    raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], f"{record_id}/{path}".encode()
                )
            except InvalidTag:
                # Not this record's value (moved or altered): verify names the row; show why.
                return "[undecryptable]"
            return jsonwire.loads(plain)

        opened: dict[str, Any] = self._walk(record, "", open_value)
        return opened

    def _walk(self, value: Any, path: str, change: Any) -> Any:
        if isinstance(value, dict):
            return {
                name: (
                    change(item, f"{path}{name}")
                    if name in self.names
                    else self._walk(item, f"{path}{name}.", change)
                )
                for name, item in value.items()
            }
        if isinstance(value, list):
            return [self._walk(item, f"{path}{i}.", change) for i, item in enumerate(value)]
        return value
