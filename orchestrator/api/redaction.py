"""Redaction by role: personal fields shown to auditors and admins, masked for the rest.

The fields are those the audit store treats as personal (`ORCHESTRATOR_AUDIT_PERSONAL_FIELDS`),
at any depth of a record or profile. An operator key with the `pii` grant sees them too.
"""

from __future__ import annotations

from typing import Any

from orchestrator.control.keys import ApiKey

__all__ = ["MASK", "Redactor"]

MASK = "***"
"""What a personal value reads as for a caller who may not see it."""


class Redactor:
    """Masks the personal fields of JSON data for callers who may not see them."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    @classmethod
    def from_setting(cls, text: str) -> Redactor:
        """From the audit's personal-fields setting (comma-separated names)."""
        return cls(frozenset(name.strip() for name in text.split(",") if name.strip()))

    @staticmethod
    def sees_personal(caller: ApiKey) -> bool:
        """Auditors and admins read personal data; operators only with the `pii` grant."""
        return caller.role in ("auditor", "admin") or "pii" in caller.grants

    def for_caller(self, caller: ApiKey, data: dict[str, Any]) -> dict[str, Any]:
        """`data` as `caller` may see it."""
        if self.sees_personal(caller):
            return data
        masked: dict[str, Any] = self._mask(data)
        return masked

    def _mask(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                name: MASK if name in self.names else self._mask(item)
                for name, item in value.items()
            }
        if isinstance(value, list):
            return [self._mask(item) for item in value]
        return value
