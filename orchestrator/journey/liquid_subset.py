"""A fast renderer for the Liquid message templates mostly use, equal to python-liquid's.

Rendering through python-liquid builds a render context, a buffer and a chain of scopes per
call: ~50 µs for a one-line subject, most of a pure `advance()`. Most template text is plain
text with `{{ a.b.c }}` outputs, some with `| default: 'text'`; this module renders exactly
that subset with plain dict look-ups. Anything else (tags, other filters, whitespace control,
literals, values it does not know how to print) renders through python-liquid, so the output
is python-liquid's in every case (tests/test_liquid_subset.py checks it property by property).

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
  int and float as `str()` does; any other value goes to python-liquid.
"""

from __future__ import annotations

import re
from typing import Any

from liquid import BoundTemplate

__all__ = ["SubsetTemplate", "subset_of"]

_OUTPUT = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_EXPRESSION = re.compile(
    r"\s*(?P<path>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[\d+\])*)\s*"
    r"(?:\|\s*default\s*:\s*(?P<default>'[^'\\]*'|\"[^\"\\]*\")\s*)?"
)
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


class SubsetTemplate:
    """A Liquid template in the subset, rendered without python-liquid (falling back to it
    for values outside the subset). Renders like `BoundTemplate.render`."""

    __slots__ = ("_bound", "_parts")

    def __init__(self, parts: tuple[str | Output, ...], bound: BoundTemplate) -> None:
        self._parts = parts
        self._bound = bound

    def render(self, **scope: Any) -> str:
        """The rendered text, exactly as python-liquid renders it with `scope`."""
        try:
            return "".join(
                part if isinstance(part, str) else _output(part, scope) for part in self._parts
            )
        except _UnsupportedError:
            return self._bound.render(**scope)


def subset_of(source: str, bound: BoundTemplate) -> SubsetTemplate | None:
    """`source` (parsed by python-liquid as `bound`) as a `SubsetTemplate`, or None when it
    uses Liquid beyond the subset."""
    parts: list[str | Output] = []
    position = 0
    for match in _OUTPUT.finditer(source):
        parts.append(source[position : match.start()])
        output = _parse_output(match[1])
        if output is None:
            return None
        parts.append(output)
        position = match.end()
    parts.append(source[position:])
    texts = [part for part in parts if isinstance(part, str)]
    if any(markup in text for text in texts for markup in _OTHER_MARKUP):
        return None
    return SubsetTemplate(tuple(part for part in parts if part != ""), bound)


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
