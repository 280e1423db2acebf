"""CEL conditions: compiled once at load, evaluated in the hot path without raising."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import cel

__all__ = ["ALLOWED_VARIABLES", "CelSyntaxError", "Condition", "compile_condition"]

ALLOWED_VARIABLES = frozenset({"event", "profile", "journey"})
_POSITION = re.compile(r"<input>:(\d+):(\d+): (.*)")


class CelSyntaxError(ValueError):
    """A condition does not compile; `line`/`col` are 1-based within the expression."""

    def __init__(self, message: str, line: int, col: int) -> None:
        super().__init__(message)
        self.line = line
        self.col = col


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled CEL expression over `event`, `profile` and `journey`."""

    source: str
    program: Any

    def evaluate(self, context: dict[str, Any]) -> tuple[bool, str | None]:
        """Return (result, error). A runtime error or a non-boolean result counts as false."""
        try:
            value = self.program.execute(context)
        except Exception as exc:  # noqa: BLE001 - CEL surfaces type/key errors in many classes
            return False, f"{type(exc).__name__}: {exc}"
        if isinstance(value, bool):
            return value, None
        return False, f"condition gave {value!r}, not true or false"


def compile_condition(source: str) -> Condition:
    """Compile `source`; raises `CelSyntaxError` naming the position and the fix."""
    try:
        program = cel.compile(source)
    except ValueError as exc:
        text = str(exc)
        match = _POSITION.search(text)
        if match is None:
            raise CelSyntaxError(f"CEL syntax error in {source!r}: {text}", 1, 1) from exc
        line, col, detail = int(match[1]), int(match[2]), match[3]
        raise CelSyntaxError(
            f"CEL syntax error in {source!r} at column {col}: {detail}", line, col
        ) from exc
    unknown = sorted(set(program.variables()) - ALLOWED_VARIABLES)
    if unknown:
        raise CelSyntaxError(
            f"unknown variable {', '.join(unknown)} in {source!r}: conditions can use only "
            "event, profile and journey (e.g. event.properties.total, profile.tier)",
            1,
            1,
        )
    return Condition(source=source, program=program)
