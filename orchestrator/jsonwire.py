"""The one JSON codec used for every wire format (orjson underneath)."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["JSONDecodeError", "dumps", "dumps_line", "dumps_pretty", "loads"]

JSONDecodeError = orjson.JSONDecodeError

_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> bytes:
    """Serialize to compact UTF-8 JSON bytes."""
    return orjson.dumps(value, option=_OPTIONS)


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
