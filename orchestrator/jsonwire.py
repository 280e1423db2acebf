"""The one JSON codec used for every wire format (orjson underneath)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

__all__ = [
    "Fragment",
    "JSONDecodeError",
    "dumps",
    "dumps_canonical",
    "dumps_line",
    "dumps_pretty",
    "dumps_records",
    "loads",
]

JSONDecodeError = orjson.JSONDecodeError
# JSON bytes already encoded, embedded as they are by `dumps` (not re-encoded).
Fragment = orjson.Fragment

_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> bytes:
    """Serialize to compact UTF-8 JSON bytes."""
    return orjson.dumps(value, option=_OPTIONS)


def dumps_records(value: Any, as_dict: Callable[[Any], Any]) -> bytes:
    """Like `dumps`, with every dataclass inside written as what `as_dict` returns for it."""
    return orjson.dumps(value, default=as_dict, option=_OPTIONS | orjson.OPT_PASSTHROUGH_DATACLASS)


def dumps_line(value: Any) -> str:
    """Serialize to one line of text (for JSON Lines output)."""
    return orjson.dumps(value, option=_OPTIONS).decode()


def dumps_pretty(value: Any) -> str:
    """Indented, key-sorted JSON text for files people read and diff."""
    return orjson.dumps(
        value, option=_OPTIONS | orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
    ).decode()


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON; raises `JSONDecodeError` (a `ValueError`) on bad input."""
    return orjson.loads(data)


def dumps_canonical(value: Any) -> bytes:
    """Compact JSON with every object's keys sorted: the same value always gives the same bytes
    (what the audit store's hash chain covers)."""
    return orjson.dumps(value, option=_OPTIONS | orjson.OPT_SORT_KEYS)
