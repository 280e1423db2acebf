"""YAML loading that remembers where every value came from, so errors can say FILE:LINE:COL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = ["Located", "Path", "YamlSyntaxError", "load_located"]

Path = tuple[str | int, ...]

# A journey or template holds a few hundred values; aliases can make a tiny file expand to
# billions ("billion laughs"), so stop well before that.
MAX_VALUES = 100_000


class YamlSyntaxError(ValueError):
    """The text is not YAML; `line`/`col` are 1-based."""

    def __init__(self, message: str, line: int, col: int) -> None:
        super().__init__(message)
        self.line = line
        self.col = col


@dataclass(slots=True)
class Located:
    """A parsed document plus the 1-based (line, col) of each value, keyed by its path.

    For scalars, `ends` holds where each one ends and `styles` how it is written (`'`, `"`,
    `|` or `>`; plain ones are absent), so a position inside a value's text can be found in the
    file. `quoted` holds the quoted ones.
    """

    data: Any
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    quoted: set[Path] = field(default_factory=set)
    styles: dict[Path, str] = field(default_factory=dict)
    ends: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def where(self, loc: Sequence[str | int]) -> tuple[int, int]:
        """Best position for a (possibly inexact) path: the deepest prefix that exists.

        Elements not in the document (pydantic's union tags, say) are skipped.
        """
        path: Path = ()
        best = self.positions.get((), (1, 1))
        for part in loc:
            candidate = (*path, part)
            if candidate in self.positions:
                path = candidate
                best = self.positions[candidate]
        return best


def load_located(text: str) -> Located:
    """Parse one YAML document with positions; raises `YamlSyntaxError`."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YamlSyntaxError(
            f"YAML syntax error: {exc.problem or exc}; check the indentation and quoting here",
            line,
            col,
        ) from exc
    except yaml.reader.ReaderError as exc:  # a control character PyYAML refuses to read
        before = text[: exc.position]
        line, col = before.count("\n") + 1, exc.position - before.rfind("\n")
        raise YamlSyntaxError(
            f"YAML error: character {exc.character:#x} is not allowed in YAML; remove it",
            line,
            col,
        ) from exc
    located = Located(data=None)
    if node is None:
        return located
    try:
        located.data = _convert(node, (), located)
    except yaml.MarkedYAMLError as exc:  # e.g. an unknown tag such as !!python/object
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YamlSyntaxError(f"YAML error: {exc.problem or exc}", line, col) from exc
    return located


def _convert(
    node: yaml.Node, path: Path, out: Located, inside: frozenset[int] = frozenset()
) -> Any:
    out.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if len(out.positions) > MAX_VALUES:
        raise YamlSyntaxError(
            f"YAML error: more than {MAX_VALUES} values (aliases expanding?): a journey is "
            "far smaller",
            *out.positions[path],
        )
    if id(node) in inside:
        raise YamlSyntaxError(
            "YAML error: an alias refers to a value containing it", *out.positions[path]
        )
    inside = inside | {id(node)}
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlSyntaxError(
                    "YAML error: a key must be a plain name, not a list or mapping",
                    key_node.start_mark.line + 1,
                    key_node.start_mark.column + 1,
                )
            key = _scalar(key_node)
            result[key] = _convert(value_node, (*path, str(key)), out, inside)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(child, (*path, i), out, inside) for i, child in enumerate(node.value)]
    out.ends[path] = (node.end_mark.line + 1, node.end_mark.column + 1)
    if isinstance(node, yaml.ScalarNode) and node.style:
        out.styles[path] = node.style
        if node.style in ("'", '"'):
            out.quoted.add(path)
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    constructor = yaml.SafeLoader("")
    try:
        return constructor.construct_object(node, deep=True)
    finally:
        constructor.dispose()
