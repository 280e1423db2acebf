"""Conditions in a common subset of CEL, evaluated as Python over the plain scope dicts.

Running a CEL program first converts every variable it uses (the whole event, profile and
journey dicts) to CEL values: ~45 µs per condition, far more than the test itself. Journey
conditions are mostly `has()` guards, comparisons and `&&`/`||`; this module compiles that
subset to Python closures. A closure answers only when it is certain of CEL's answer; for
anything else (a missing key, a type CEL would reject, mixed types, a non-boolean result) it
says "unknown" and the condition runs its CEL program, so results and error messages are
CEL's in every case (tests/test_cel_subset.py checks it property by property).

The subset: the condition's variables, `.field` selection on maps, `has(x.field)`, `size(x)`
of strings, lists and maps, string (no escapes), int, double, bool and null literals,
`== != < <= > >=` between two strings, two bools, two nulls or two numbers, `"key" in map`,
`!`, `&&`, `||` (CEL's: `false && anything` is false, `true || anything` is true, either
side) and parentheses.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from typing import Any

__all__ = ["UNKNOWN", "Evaluator", "compile_subset"]

# A closure's result when only CEL can tell.
UNKNOWN: Any = object()
Evaluator = Callable[[dict[str, Any]], Any]

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<number>\d+(?:\.\d+)?(?![\w.]))
    | (?P<string>'[^'\\\n]*'|"[^"\\\n]*")
    | (?P<name>[A-Za-z_]\w*)
    | (?P<op>&&|\|\||==|!=|<=|>=|[<>!().])
    )""",
    re.VERBOSE,
)
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_LITERALS = {"true": True, "false": False, "null": None}
# CEL ints are 64-bit; beyond that, and where a double cannot hold an int exactly, ask CEL.
_INT_BOUND = 2**53


class _NotInSubsetError(Exception):
    """The expression uses CEL beyond the subset."""


def compile_subset(source: str, variables: frozenset[str]) -> Evaluator | None:
    """A closure evaluating `source` (CEL that compiles) over a scope, or None when it is
    beyond the subset. The closure returns a bool or `UNKNOWN`."""
    try:
        tokens = _tokens(source)
        parser = _Parser(tokens, variables)
        evaluator = parser.disjunction()
        if parser.position != len(tokens):
            raise _NotInSubsetError
    except _NotInSubsetError:
        return None
    return evaluator


def _tokens(source: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position, end = 0, len(source.rstrip())
    while position < end:
        match = _TOKEN.match(source, position)
        if match is None or match.lastgroup is None:
            raise _NotInSubsetError
        tokens.append((match.lastgroup, match[match.lastgroup]))
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent over CEL's precedence: `||` < `&&` < relations < `!` < selection."""

    def __init__(self, tokens: list[tuple[str, str]], variables: frozenset[str]) -> None:
        self.tokens = tokens
        self.variables = variables
        self.position = 0

    def peek(self) -> str | None:
        return self.tokens[self.position][1] if self.position < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            raise _NotInSubsetError
        token = self.tokens[self.position]
        if expected is not None and token[1] != expected:
            raise _NotInSubsetError
        self.position += 1
        return token

    def disjunction(self) -> Evaluator:
        return self.chain("||", self.conjunction, absorbing=True)

    def conjunction(self) -> Evaluator:
        return self.chain("&&", self.relation, absorbing=False)

    def chain(self, op: str, operand: Callable[[], Evaluator], *, absorbing: bool) -> Evaluator:
        left = operand()
        while self.peek() == op:
            self.take()
            left = _either(left, operand(), absorbing=absorbing)
        return left

    def relation(self) -> Evaluator:
        left = self.unary()
        op = self.peek()
        if op in _COMPARISONS:
            self.take()
            return _comparison(_COMPARISONS[str(op)], left, self.unary(), ordered=op[0] in "<>")
        if op == "in":
            self.take()
            return _membership(left, self.unary())
        return left

    def unary(self) -> Evaluator:
        if self.peek() == "!":
            self.take()
            return _negation(self.unary())
        return self.member()

    def member(self) -> Evaluator:
        value = self.primary()
        while self.peek() == ".":
            self.take()
            value = _select(value, self.field())
        return value

    def field(self) -> str:
        kind, name = self.take()
        if kind != "name" or name in _LITERALS or name == "in":
            raise _NotInSubsetError
        return name

    def primary(self) -> Evaluator:
        kind, text = self.take()
        if kind == "number":
            number = float(text) if "." in text else int(text)
            if isinstance(number, int) and number >= _INT_BOUND:
                raise _NotInSubsetError
            return lambda _: number
        if kind == "string":
            literal = text[1:-1]
            return lambda _: literal
        if text == "(":
            inner = self.disjunction()
            self.take(")")
            return inner
        if kind != "name":
            raise _NotInSubsetError
        if text in _LITERALS:
            constant = _LITERALS[text]
            return lambda _: constant
        if text in ("has", "size") and self.peek() == "(":
            return self.call(text)
        if text not in self.variables:
            raise _NotInSubsetError
        return lambda scope: scope.get(text, UNKNOWN)

    def call(self, function: str) -> Evaluator:
        self.take("(")
        if function == "size":
            argument = self.disjunction()
            self.take(")")
            return _size(argument)
        # has() takes a field selection: test the field on the map it selects from.
        target = self.primary()
        fields = []
        while self.peek() == ".":
            self.take()
            fields.append(self.field())
        self.take(")")
        if not fields:
            raise _NotInSubsetError
        for name in fields[:-1]:
            target = _select(target, name)
        return _has(target, fields[-1])


def _either(left: Evaluator, right: Evaluator, *, absorbing: bool) -> Evaluator:
    """`&&` (absorbing False) or `||` (absorbing True): the absorbing value on either side
    decides, even when the other side is an error; otherwise both must be bools."""

    def evaluate(scope: dict[str, Any]) -> Any:
        first = left(scope)
        if first is absorbing:
            return absorbing
        second = right(scope)
        if second is absorbing:
            return absorbing
        if first is (not absorbing) and second is (not absorbing):
            return not absorbing
        return UNKNOWN

    return evaluate


def _negation(operand: Evaluator) -> Evaluator:
    def evaluate(scope: dict[str, Any]) -> Any:
        value = operand(scope)
        return (not value) if type(value) is bool else UNKNOWN

    return evaluate


def _select(operand: Evaluator, name: str) -> Evaluator:
    def evaluate(scope: dict[str, Any]) -> Any:
        value = operand(scope)
        if type(value) is dict:
            return value.get(name, UNKNOWN)
        return UNKNOWN

    return evaluate


def _has(operand: Evaluator, name: str) -> Evaluator:
    def evaluate(scope: dict[str, Any]) -> Any:
        value = operand(scope)
        return name in value if type(value) is dict else UNKNOWN

    return evaluate


def _size(operand: Evaluator) -> Evaluator:
    def evaluate(scope: dict[str, Any]) -> Any:
        value = operand(scope)
        kind = type(value)
        return len(value) if kind is str or kind is list or kind is dict else UNKNOWN

    return evaluate


def _membership(key: Evaluator, container: Evaluator) -> Evaluator:
    def evaluate(scope: dict[str, Any]) -> Any:
        value, mapping = key(scope), container(scope)
        if type(value) is str and type(mapping) is dict:
            return value in mapping
        return UNKNOWN

    return evaluate


def _comparison(
    compare: Callable[[Any, Any], bool], left: Evaluator, right: Evaluator, *, ordered: bool
) -> Evaluator:
    def evaluate(scope: dict[str, Any]) -> Any:
        a, b = left(scope), right(scope)
        kind = _kind(a)
        if kind is None or kind != _kind(b) or (ordered and kind in ("bool", "null")):
            return UNKNOWN
        return compare(a, b)

    return evaluate


def _kind(value: Any) -> str | None:
    """The CEL type family a value compares within, or None when only CEL can tell."""
    kind = type(value)
    if kind is str:
        return "string"
    if kind is bool:
        return "bool"
    if value is None:
        return "null"
    if kind is int:
        return "number" if -_INT_BOUND < value < _INT_BOUND else None
    if kind is float:
        return "number" if math.isfinite(value) else None
    return None
