"""CEL conditions: compiled once at load, evaluated in the hot path without raising."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import cel

from orchestrator.journey.cel_subset import Evaluator, compile_subset

__all__ = ["ALLOWED_VARIABLES", "CelSyntaxError", "Condition", "compile_condition"]

_JOURNEY_VARIABLES = ("event", "profile", "journey")
ALLOWED_VARIABLES = frozenset(_JOURNEY_VARIABLES)
_MACRO_BINDING = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
_JOURNEY_EXAMPLE = "e.g. event.properties.total, profile.tier"
_POSITION = re.compile(r"<input>:(\d+):(\d+): (.*)")


class CelSyntaxError(ValueError):
    """A condition does not compile; `line`/`col` are 1-based within the expression."""

    def __init__(self, message: str, line: int, col: int) -> None:
        super().__init__(message)
        self.line = line
        self.col = col


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled CEL expression over `event`, `profile` and `journey`.

    `subset`: the expression as Python (cel_subset.py) when it is in the subset that
    module covers; it answers when it is sure of CEL's answer, the program otherwise.
    """

    source: str
    program: Any
    variables: tuple[str, ...] = ("event", "profile", "journey")
    subset: Evaluator | None = None

    def evaluate(self, scope: dict[str, Any]) -> tuple[bool, str | None]:
        """Return (result, error). A runtime error or a non-boolean result counts as false."""
        if self.subset is not None:
            answer = self.subset(scope)
            if type(answer) is bool:
                return answer, None
        # Converting a variable to CEL costs far more than evaluating; pass only those used.
        context = {name: scope[name] for name in self.variables if name in scope}
        try:
            value = self.program.execute(context)
        except Exception as exc:  # noqa: BLE001 - CEL surfaces type/key errors in many classes
            return False, f"{type(exc).__name__}: {exc}"
        if isinstance(value, bool):
            return value, None
        return False, f"condition gave {value!r}, not true or false"


def compile_condition(
    source: str, variables: tuple[str, ...] = _JOURNEY_VARIABLES, example: str = _JOURNEY_EXAMPLE
) -> Condition:
    """Compile `source` over `variables` (a journey's by default); raises
    `CelSyntaxError` naming the position and the fix (`example` shows a valid use)."""
    # Trailing whitespace (the newline a YAML block scalar ends with) would put a syntax error
    # at the end of the expression on a line of its own.
    text = source.rstrip()
    try:
        program = cel.compile(text)
    except ValueError as exc:
        message = str(exc)
        match = _POSITION.search(message)
        if match is None:
            raise CelSyntaxError(f"CEL syntax error in {text!r}: {message}", 1, 1) from exc
        line, col, detail = int(match[1]), int(match[2]), match[3]
        where = f"line {line}, column {col}" if "\n" in text else f"column {col}"
        raise CelSyntaxError(
            f"CEL syntax error in {text!r} at {where}: {detail}", line, col
        ) from exc
    used = set(program.variables())
    allowed = frozenset(variables)
    # Macros like `list.exists(x, x > 1)` bind their own iteration variables.
    unknown = sorted(used - allowed - set(_MACRO_BINDING.findall(text)))
    if unknown:
        line, col = _first_use(text, unknown[0])
        raise CelSyntaxError(
            f"unknown variable {', '.join(unknown)} in {text!r}: conditions can use only "
            f"{_listed(variables)} ({example})",
            line,
            col,
        )
    return Condition(
        source=source,
        program=program,
        variables=tuple(sorted(used & allowed)),
        subset=compile_subset(text, frozenset(used & allowed)),
    )


def _listed(names: tuple[str, ...]) -> str:
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]


def _first_use(text: str, name: str) -> tuple[int, int]:
    """1-based (line, col) of the first use of variable `name` (not a field `.name`)."""
    match = re.search(rf"(?<![\w.]){re.escape(name)}\b", text)
    if match is None:
        return 1, 1
    before = text[: match.start()]
    return before.count("\n") + 1, match.start() - (before.rfind("\n") + 1) + 1
