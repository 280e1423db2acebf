"""Turning pydantic errors and value offsets into `FILE:LINE:COL: message` problems."""

from __future__ import annotations

from typing import Any

from orchestrator.errors import Problem
from orchestrator.journey import model as m
from orchestrator.journey.yamlpos import Located, Path

__all__ = ["ProblemList", "closest_union_member", "field_name"]


class ProblemList:
    """Problems found in one journey file, located with the file's YAML positions."""

    def __init__(self, path: str, text: str, located: Located) -> None:
        self.path = path
        self.text = text
        self.located = located
        self.items: list[Problem] = []

    def sorted(self) -> list[Problem]:
        """The problems in file order."""
        return sorted(self.items, key=lambda p: (p.line, p.col))

    def add(self, path: Path, message: str) -> None:
        """A problem at the value `path` points to."""
        line, col = self.located.where(path)
        self.items.append(Problem(self.path, line, col, message))

    def add_at(self, line: int, col: int, message: str) -> None:
        """A problem at an exact position."""
        self.items.append(Problem(self.path, line, col, message))

    def step_label(self, loc: tuple[Any, ...]) -> str:
        """`step 'id': ` for a location inside a step, else nothing."""
        if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
            steps = (self.located.data or {}).get("steps") or []
            if loc[1] < len(steps) and isinstance(steps[loc[1]], dict) and "id" in steps[loc[1]]:
                return f"step {steps[loc[1]]['id']!r}: "
            return f"step #{loc[1] + 1}: "
        return ""

    def add_pydantic(self, error: Any) -> None:
        """One pydantic error, reworded to say what to change."""
        where = _without_union_tags(tuple(error["loc"]), self.located)
        named = where  # the field the message is prefixed with
        kind = error["type"]
        message = str(error["msg"]).removeprefix("Value error, ")
        if kind == "step_kind":
            where, message = self._step_kind_problem(where)
        elif not where and kind == "model_type":
            what = "empty" if error.get("input") is None else f"a {type(error['input']).__name__}"
            message = (
                f"the file is {what}, not a journey: write a YAML mapping with id, name, "
                "trigger and steps"
            )
        elif kind == "extra_forbidden" and where:
            named, message = (
                where[:-1],
                f"unknown field {where[-1]!r}: remove it or check its spelling",
            )
        elif kind == "missing" and where:
            named, message = where[:-1], f"missing field {where[-1]!r}: add it"
        elif (
            "input" in error
            and not isinstance(error["input"], dict | list)
            and repr(error["input"]) not in message
        ):
            message = f"{message} (got {error['input']!r})"
        field = field_name(named)
        self.add(where, f"{self.step_label(where)}{field + ': ' if field else ''}{message}")

    def _step_kind_problem(self, loc: Path) -> tuple[Path, str]:
        kinds = ", ".join(m.STEP_KINDS)
        step = self.located.data["steps"][loc[1]]
        if not isinstance(step, dict):
            return loc, f"a step is a mapping with an `id` and exactly one of: {kinds}"
        present = [kind for kind in m.STEP_KINDS if kind in step]
        if len(present) > 1:
            return (
                (*loc, present[1]),
                f"a step does exactly one thing but this one has {' and '.join(present)}: "
                "make them separate steps",
            )
        unknown = [key for key in step if key not in {"id", "next", *m.STEP_KINDS}]
        if unknown:
            return (
                (*loc, str(unknown[0])),
                f"unknown field {unknown[0]!r}: a step needs exactly one of: {kinds}",
            )
        return loc, f"a step needs exactly one of: {kinds}"

    def position_in_value(self, path: Path, text: str, line: int, col: int) -> tuple[int, int]:
        """File (line, col) of the 1-based (line, col) inside the string value at `path`.

        Follows how YAML wrote the value: quotes and escapes, and line folding for values
        written over several lines (each line break is one character of the value).
        """
        index = sum(len(part) + 1 for part in text.split("\n")[: line - 1]) + col - 1
        start_line, start_col = self.located.where(path)
        end_line, end_col = self.located.ends.get(path, (start_line, start_col))
        style = self.located.styles.get(path, "")
        lines = self.text.splitlines()
        row, last = start_line - 1, min(end_line - (2 if end_col == 1 else 1), len(lines) - 1)
        begin = start_col - 1 + (1 if style in ("'", '"') else 0)
        if style in ("|", ">"):  # the text starts on the line after `|` or `>`
            row, begin = row + 1, -1
        while row < len(lines):
            content = lines[row].rstrip()
            if begin < 0:
                begin = len(content) - len(content.lstrip())
            raw, length = _raw_offset(content[begin:], index, style)
            if index <= length or row >= last:
                return row + 1, begin + raw + 1
            index -= length + 1
            row, begin = row + 1, -1
        return start_line, start_col


def field_name(loc: Path) -> str:
    """`('steps', 1, 'send', 'channel')` -> `send.channel` (the step itself is named apart)."""
    return ".".join(str(part) for part in (loc[2:] if loc[:1] == ("steps",) else loc))


def _is_union_tag(part: str | int, prefix: Path, located: Located) -> bool:
    """Is `part` pydantic's name for a union member rather than a key of the document?"""
    if not isinstance(part, str) or (*prefix, part) in located.positions:
        return False
    # Journey fields are lower-case; pydantic names union members by class or `literal[...]`.
    return part[:1].isupper() or part.startswith("literal[")


def _without_step_tag(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop the step-kind tag pydantic puts in a step's error location."""
    if len(loc) >= 3 and loc[0] == "steps" and isinstance(loc[1], int) and loc[2] in m.STEP_KINDS:
        return (*loc[:2], *loc[3:])  # e.g. ('steps', 0, 'wait', 'wait') -> ('steps', 0, 'wait')
    return loc


def _without_union_tags(loc: tuple[Any, ...], located: Located) -> Path:
    """Drop pydantic's union member names from an error location, keeping document keys."""
    path: Path = ()
    for part in _without_step_tag(loc):
        if not _is_union_tag(part, path, located):
            path = (*path, part)
    return path


def closest_union_member(errors: list[Any], located: Located) -> list[Any]:
    """When a value matches no member of a union, keep only the closest member's errors.

    Pydantic reports every member's errors (a branch case that is neither a `when`/`next` case
    nor a `default` gives several); the member whose errors lie deepest, then the fewest of
    them, is the one the author meant.
    """
    groups: dict[tuple[Any, ...], dict[str, list[Any]]] = {}
    kept: list[Any] = []
    for error in errors:
        loc = _without_step_tag(tuple(error["loc"]))
        tags = [i for i, part in enumerate(loc) if _is_union_tag(part, loc[:i], located)]
        if not tags:
            kept.append(error)
            continue
        groups.setdefault(loc[: tags[0]], {}).setdefault(loc[tags[0]], []).append(error)
    for members in groups.values():
        best = min(
            members.values(),
            key=lambda errs: (-max(len(e["loc"]) for e in errs), len(errs)),
        )
        kept.extend(best)
    return kept


def _raw_offset(raw: str, index: int, style: str) -> tuple[int, int]:
    """(offset in `raw` of the value's character `index`, value characters `raw` holds).

    `raw` is one line of the file from where the value's text starts on it; quoted values
    end at their closing quote and count an escape (`\\"`, `\\u00e9`, `''`) as one character.
    """
    position = count = 0
    offset = None
    while position < len(raw):
        if count == index:
            offset = position
        char, following = raw[position], raw[position + 1 : position + 2]
        if style in ("'", '"') and char == style and (style == '"' or following != "'"):
            break  # the closing quote
        if style == '"' and char == "\\":
            position += {"x": 4, "u": 6, "U": 10}.get(following, 2)
        else:
            position += 2 if style == "'" and char == "'" else 1
        count += 1
    return (position + index - count if offset is None else offset), count
