"""Crypto-shredding: fields marked personal are stored encrypted under the customer's own key.

Each personal value becomes `enc:v1:<base64(nonce || AES-256-GCM ciphertext)>`, with a fresh
96-bit nonce per value and the record id and field path as associated data (a ciphertext
moved to another record or field no longer opens). Erasing a customer destroys their key, so
every such value of theirs becomes unreadable while the rows, and so the hash chain, stay
as they were.
"""

from __future__ import annotations

import binascii
import os
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from orchestrator import jsonwire

__all__ = ["ERASED", "PersonalFields", "new_key"]

ERASED = "[erased]"
"""What a personal value reads as once its customer's key is destroyed."""

_PREFIX = "enc:v1:"
_NONCE_BYTES = 12

# (value, path) -> what the personal value becomes.
_Change = Callable[[Any, str], Any]


def new_key() -> bytes:
    """A fresh 256-bit data key for one customer."""
    return AESGCM.generate_key(bit_length=256)


class PersonalFields:
    """Seals and opens the fields named personal, wherever they occur in a record.

    `seal` and `open` take a key or, on hot paths, the `cipher(key)` made once per customer.
    """

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    @classmethod
    def from_setting(cls, text: str) -> PersonalFields:
        """From `ORCHESTRATOR_AUDIT_PERSONAL_FIELDS` (comma-separated field names)."""
        return cls(frozenset(name.strip() for name in text.split(",") if name.strip()))

    @staticmethod
    def cipher(key: bytes | None) -> AESGCM | None:
        """The cipher of a customer's key (None once erased), to reuse across their records."""
        return AESGCM(key) if key is not None else None

    def seal(
        self, record: dict[str, Any], key: bytes | AESGCM | None, record_id: str
    ) -> dict[str, Any]:
        """`record` with each personal value encrypted; with no key (erased) replaced by ERASED."""
        cipher = self.cipher(key) if isinstance(key, bytes) else key
        if cipher is None:
            return self._walk(record, "", lambda value, path: ERASED)
        encrypt = cipher.encrypt
        prefix = record_id + "/"

        def seal_value(value: Any, path: str) -> str:
            nonce = os.urandom(_NONCE_BYTES)
            sealed = encrypt(nonce, jsonwire.dumps(value), (prefix + path).encode())
            return _PREFIX + binascii.b2a_base64(nonce + sealed, newline=False).decode()

        return self._walk(record, "", seal_value)

    def open(
        self, record: dict[str, Any], key: bytes | AESGCM | None, record_id: str
    ) -> dict[str, Any]:
        """`record` with each sealed value decrypted; ERASED where the key is gone."""
        return self._walk(record, "", self._opener(key, record_id))

    def open_in_place(
        self, record: dict[str, Any], key: bytes | AESGCM | None, record_id: str
    ) -> None:
        """Decrypt `record`'s sealed values where they are (for a record just parsed, which
        nothing else holds: reading an export, no copy of every nested map is needed)."""
        self._visit(record, "", self._opener(key, record_id))

    def _opener(self, key: bytes | AESGCM | None, record_id: str) -> _Change:
        cipher = self.cipher(key) if isinstance(key, bytes) else key

        def open_value(value: Any, path: str) -> Any:
            if not (isinstance(value, str) and value.startswith(_PREFIX)):
                return value
            if cipher is None:
                return ERASED
            # binascii, not base64: the same decoding without base64's per-call checks in Python.
            raw = binascii.a2b_base64(value[len(_PREFIX) :])
            try:
                plain = cipher.decrypt(
                    raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], f"{record_id}/{path}".encode()
                )
            except InvalidTag:
                # Not this record's value (moved or altered): verify names the row; show why.
                return "[undecryptable]"
            return jsonwire.loads(plain)

        return open_value

    def _visit(self, record: dict[str, Any], path: str, change: _Change) -> None:
        """`_walk`, changing `record` itself (replacing values of existing keys only)."""
        names = self.names
        for name, item in record.items():
            if name in names:
                record[name] = change(item, path + name)
            elif type(item) is dict:
                self._visit(item, f"{path}{name}.", change)
            elif type(item) is list:
                for i, element in enumerate(item):
                    if type(element) is dict:
                        self._visit(element, f"{path}{name}.{i}.", change)
                    elif type(element) is list:
                        item[i] = self._walk_list(element, f"{path}{name}.{i}.", change)

    def _walk(self, record: dict[str, Any], path: str, change: _Change) -> dict[str, Any]:
        """A copy of `record` with `change` applied to each personal value, at any depth."""
        names = self.names
        out: dict[str, Any] = {}
        for name, item in record.items():
            # Type checks inline, not a call per scalar: this runs for every stored record.
            if name in names:
                out[name] = change(item, path + name)
            elif type(item) is dict:
                out[name] = self._walk(item, f"{path}{name}.", change)
            elif type(item) is list:
                out[name] = self._walk_list(item, f"{path}{name}.", change)
            else:
                out[name] = item
        return out

    def _walk_list(self, items: list[Any], path: str, change: _Change) -> list[Any]:
        return [
            self._walk(item, f"{path}{i}.", change)
            if type(item) is dict
            else self._walk_list(item, f"{path}{i}.", change)
            if type(item) is list
            else item
            for i, item in enumerate(items)
        ]
