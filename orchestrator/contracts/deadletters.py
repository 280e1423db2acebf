"""The `deadletter` topic's record: a record that could not be applied or produced, and why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter

from orchestrator.contracts.base import SCHEMA_VERSION, SchemaVersion, WireRecord

__all__ = ["DEADLETTER_RECORD", "Base64Key", "DeadLetterRecord", "DeadLetterSource"]


@dataclass(slots=True, kw_only=True)
class DeadLetterSource(WireRecord):
    """Where the original is: `partition`/`offset` are None for a record never produced."""

    topic: str
    partition: int | None
    offset: int | None


@dataclass(slots=True, kw_only=True)
class Base64Key(WireRecord):
    """An original key that is not UTF-8, in base64."""

    b64: str


@dataclass(slots=True, kw_only=True)
class DeadLetterRecord(WireRecord):
    """The reason, the source, and the original's length, sha256 and first bytes (bounded).

    The excerpt is `value` (text) if the kept bytes are UTF-8, else `value_b64`; only one of
    them is written (`value` is null for a null original). `truncated` says whether the
    excerpt is not the whole original: the whole one is in the source topic at `source`.
    """

    schema_version: SchemaVersion = SCHEMA_VERSION
    reason: str
    source: DeadLetterSource
    key: str | Base64Key | None
    value: str | None = None
    value_b64: str | None = None
    original_length: int | None
    sha256: str | None
    truncated: bool

    def to_dict(self) -> dict[str, Any]:
        """The fields, with only the excerpt field that is used."""
        fields = WireRecord.to_dict(self)
        del fields["value" if self.value_b64 is not None else "value_b64"]
        return fields


DEADLETTER_RECORD: TypeAdapter[DeadLetterRecord] = TypeAdapter(DeadLetterRecord)
