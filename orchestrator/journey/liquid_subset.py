"""A fast renderer for the Liquid message templates mostly use, equal to python-liquid's.

Rendering through python-liquid builds a render context, a buffer and a chain of scopes per
call: ~50 µs for a one-line subject, most of a pure `advance()`. Most template text is plain
text with `{{ a.b.c }}` outputs, some with `| default: 'text'`, some in a `{% for %}` loop;
this module renders exactly that subset with plain dict look-ups. Anything else (other tags,
other filters, literals, values it does not know how to print) renders through
python-liquid, so the output is python-liquid's in every case (tests/test_liquid_subset.py
checks it property by property).

The subset mirrors the template environment (`templates._ENVIRONMENT`: no autoescape, the
lenient `Undefined` that prints as nothing) and python-liquid's rules:

- a path's root is looked up in the render arguments; a root not among them goes to
  python-liquid (its built-ins `now` and `today` live there);
- `.key` on a dict gives its value; a missing key is undefined, except `size`, `first` and
  `last`, which python-liquid answers from the dict itself;
- `[n]` on a list gives an item when `0 <= n < len`; every other step goes to python-liquid;
- `default: 'text'` gives the text for undefined, nil, false and empty strings, lists and
  dicts (numbers, zero included, are kept);
- strings print as themselves, booleans as `true`/`false`, nil and undefined as nothing,
  int and float as `str()` does; any other value goes to python-liquid;
- `{% for name in path limit: n %}...{% endfor %}` (not nested, its body text and outputs
  without `forloop`) repeats its body over a list's first `n` items (all when `n` is 0 or
  absent, as python-liquid slices), `name` bound to each; any other iterable goes to
  python-liquid;
- whitespace control strips the text beside a dash (`{{-`, `-}}`, `{%-`, `-%}`) with
  `str.rstrip`/`str.lstrip`, as python-liquid's lexer does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from liquid import BoundTemplate

__all__ = ["SubsetTemplate", "subset_of"]

# An output or a tag, with its whitespace-control dashes (`{{-`, `-%}`).
_MARKUP = re.compile(r"\{\{(-?)(.*?)(-?)\}\}|\{%(-?)(.*?)(-?)%\}", re.DOTALL)
_PATH = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[\d+\])*"
_EXPRESSION = re.compile(
    rf"\s*(?P<path>{_PATH})\s*"
    r"(?:\|\s*default\s*:\s*(?P<default>'[^'\\]*'|\"[^\"\\]*\")\s*)?"
)
_FOR = re.compile(
    rf"\s*for\s+(?P<name>[A-Za-z_]\w*)\s+in\s+(?P<path>{_PATH})"
    r"(?:\s+limit\s*:\s*(?P<limit>\d+))?\s*"
)
_ENDFOR = re.compile(r"\s*endfor\s*")
_SEGMENT = re.compile(r"\.([A-Za-z_]\w*)|\[(\d+)\]")
# Words Liquid reads as literals, not variables.
_LITERAL_WORDS = frozenset({"true", "false", "nil", "null", "empty", "blank"})
# Markup the subset leaves to python-liquid wherever it appears in the text.
_OTHER_MARKUP = ("{{", "}}", "{%", "%}", "{#", "#}")
# Keys python-liquid answers from a dict that lacks them.
_COMPUTED_KEYS = frozenset({"size", "first", "last"})
_NO_DEFAULT = object()
_UNDEFINED = object()

Segment = str | int
Output = tuple[str, tuple[Segment, ...], Any]


class _UnsupportedError(Exception):
    """A value or step outside the subset: render through python-liquid."""


class _Loop:
    """`{% for name in path limit: n %}body{% endfor %}` over a list; the body is text and
    outputs (no `forloop`, no nested tags)."""

    __slots__ = ("body", "limit", "name", "path")

    def __init__(self, name: str, path: Output, limit: int | None) -> None:
        self.name = name
        self.path = path
        self.limit = limit
        self.body: list[str | Output] = []

    def render(self, scope: dict[str, Any]) -> str:
        root, segments, _ = self.path
        if root not in scope:
            raise _UnsupportedError
        items = _resolve(scope[root], segments)
        if type(items) is not list:
            raise _UnsupportedError
        # python-liquid slices to `limit or length`: `limit: 0` keeps every item.
        inner = dict(scope)
        out = []
        for item in items[: self.limit or len(items)]:
            inner[self.name] = item
            out.append(_joined(self.body, inner))
        return "".join(out)


Part = str | Output | _Loop


class SubsetTemplate:
    """A Liquid template in the subset, rendered without python-liquid (falling back to it
    for values outside the subset). Renders like `BoundTemplate.render`."""

    __slots__ = ("_bound", "_parts")

    def __init__(self, parts: tuple[Part, ...], bound: BoundTemplate) -> None:
        self._parts = parts
        self._bound = bound

    def render(self, **scope: Any) -> str:
        """The rendered text, exactly as python-liquid renders it with `scope`."""
        try:
            return _joined(self._parts, scope)
        except _UnsupportedError:
            return self._bound.render(**scope)


def _joined(parts: Sequence[Part], scope: dict[str, Any]) -> str:
    return "".join(
        [
            part
            if isinstance(part, str)
            else part.render(scope)
            if isinstance(part, _Loop)
            else _output(part, scope)
            for part in parts
        ]
    )


def subset_of(source: str, bound: BoundTemplate) -> SubsetTemplate | None:
    """`source` (parsed by python-liquid as `bound`) as a `SubsetTemplate`, or None when it
    uses Liquid beyond the subset."""
    parts: list[Part] = []
    loop: _Loop | None = None
    for token in _tokens(source):
        target = parts if loop is None else loop.body
        if isinstance(token, str):
            if any(markup in token for markup in _OTHER_MARKUP):
                return None
            if token:
                target.append(token)
        elif token[0] == "output":
            output = _parse_output(token[1])
            if output is None or (loop is not None and output[0] == "forloop"):
                return None
            target.append(output)
        elif loop is None and (opened := _parse_for(token[1])) is not None:
            loop = opened
            parts.append(loop)
        elif loop is not None and _ENDFOR.fullmatch(token[1]):
            loop = None
        else:
            return None
    return None if loop is not None else SubsetTemplate(tuple(parts), bound)


def _tokens(source: str) -> list[str | tuple[str, str]]:
    """Text and ("output" | "tag", expression) tokens, whitespace control applied to the
    text as python-liquid's lexer does (`str.rstrip` before `{{-`, `str.lstrip` after `-}}`)."""
    tokens: list[str | tuple[str, str]] = []
    position, strip_next = 0, False
    for match in _MARKUP.finditer(source):
        text = source[position : match.start()]
        if strip_next:
            text = text.lstrip()
        if match[1] or match[4]:
            text = text.rstrip()
        tokens.append(text)
        if match[2] is not None:
            tokens.append(("output", match[2]))
            strip_next = bool(match[3])
        else:
            tokens.append(("tag", match[5]))
            strip_next = bool(match[6])
        position = match.end()
    tail = source[position:]
    tokens.append(tail.lstrip() if strip_next else tail)
    return tokens


def _parse_for(expression: str) -> _Loop | None:
    match = _FOR.fullmatch(expression)
    if match is None or match["name"] in _LITERAL_WORDS or match["name"] == "forloop":
        return None
    path = _parse_output(match["path"])
    if path is None:
        return None
    limit = match["limit"]
    return _Loop(match["name"], path, None if limit is None else int(limit))


def _parse_output(expression: str) -> Output | None:
    match = _EXPRESSION.fullmatch(expression)
    if match is None:
        return None
    path = match["path"]
    root = re.match(r"[A-Za-z_]\w*", path)
    assert root is not None  # the expression's pattern starts with a name
    if root[0] in _LITERAL_WORDS:
        return None
    segments = tuple(
        name if name else int(index) for name, index in _SEGMENT.findall(path, root.end())
    )
    default = match["default"]
    return root[0], segments, _NO_DEFAULT if default is None else default[1:-1]


def _output(output: Output, scope: dict[str, Any]) -> str:
    root, segments, default = output
    if root not in scope:
        raise _UnsupportedError
    value = _resolve(scope[root], segments)
    if default is not _NO_DEFAULT:
        value = _defaulted(value, default)
    return _printed(value)


def _resolve(value: Any, segments: tuple[Segment, ...]) -> Any:
    for segment in segments:
        kind = type(value)
        if kind is dict and type(segment) is str:
            if segment in value:
                value = value[segment]
            elif segment in _COMPUTED_KEYS:
                raise _UnsupportedError
            else:
                return _UNDEFINED
        elif kind is list and type(segment) is int and segment < len(value):
            value = value[segment]
        else:
            raise _UnsupportedError
    return value


def _defaulted(value: Any, default: str) -> Any:
    kind = type(value)
    if kind is int or kind is float:
        return value
    if value is _UNDEFINED or value is None or value is False:
        return default
    if (kind is str or kind is list or kind is dict) and not value:
        return default
    return value


def _printed(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is bool:
        return "true" if value else "false"
    if value is None or value is _UNDEFINED:
        return ""
    if kind is int or kind is float:
        return str(value)
    raise _UnsupportedError
