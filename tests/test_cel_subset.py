"""Conditions in the CEL subset give CEL's result and error, whatever the data."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.journey.cel_subset import compile_subset
from orchestrator.journey.conditions import Condition, compile_condition

JOURNEYS = Path(__file__).resolve().parent.parent / "journeys"
KEYS = ("a", "b", "c")
ROOTS = ("event", "profile", "journey")

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.sampled_from((0, 1, 3, -1, 2**53, 2**63))
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from((0.0, 1.0, 3.0, 2.5, -0.0))
    | st.text(alphabet="ab é", max_size=3)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner),
    max_leaves=8,
)
# Maps holding most keys, so that paths often lead somewhere.
maps = st.dictionaries(st.sampled_from(KEYS), values, min_size=2)
scopes = st.fixed_dictionaries(
    {root: st.dictionaries(st.sampled_from(KEYS), maps | values, min_size=2) for root in ROOTS}
)

paths = st.builds(
    lambda root, keys: ".".join((root, *keys)),
    st.sampled_from(ROOTS),
    st.lists(st.sampled_from(KEYS), max_size=2),
)
literals = st.sampled_from(
    (
        "1",
        "3",
        "0",
        "2.5",
        "1.0",
        "'a'",
        '"b"',
        "''",
        "true",
        "false",
        "null",
        "9223372036854775807",
    )
)
# CEL outside the subset, so the fallback is exercised inside larger expressions.
beyond = st.sampled_from(
    ("-1", "1u", "event.a + 1", "event.a[0]", "'a'.size()", "[1, 2]", "event.a ? 1 : 2")
)


def _expressions(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    relation = st.sampled_from(("==", "!=", "<", "<=", ">", ">="))
    return (
        st.builds("{} && {}".format, inner, inner)
        | st.builds("{} || {}".format, inner, inner)
        | st.builds("!{}".format, inner)
        | st.builds("({})".format, inner)
        | st.builds("{} {} {}".format, inner, relation, inner)
        | st.builds("{} in {}".format, inner, inner)
        | st.builds("size({})".format, inner)
    )


guards = st.builds("has({}.{})".format, paths, st.sampled_from(KEYS))
# Beyond the subset now and then, among many atoms in it.
atoms = st.one_of(paths, paths, literals, literals, guards, guards, paths, literals, beyond)
expressions = st.recursive(atoms, _expressions, max_leaves=6)


def cel_only(condition: Condition) -> Condition:
    """The same condition evaluated by its CEL program alone."""
    return dataclasses.replace(condition, subset=None)


def outcome(condition: Condition, scope: dict[str, Any]) -> tuple[bool, str | None]:
    """`evaluate`'s answer; a map CEL gives back is printed in its own (varying) key order."""
    result, error = condition.evaluate(scope)
    if error is not None and error.startswith("condition gave ") and "{" in error:
        return result, "condition gave a value holding a map"
    return result, error


def compiles(source: str) -> Condition | None:
    try:
        return compile_condition(source)
    except ValueError:
        return None


@settings(max_examples=1500, deadline=None)
@given(expressions, scopes)
def test_the_subset_gives_cels_result_and_error(source: str, scope: dict[str, Any]) -> None:
    condition = compiles(source)
    if condition is None:  # CEL rejects it (e.g. `1 && 'a'` fails its type check)
        return
    assert outcome(condition, scope) == outcome(cel_only(condition), scope)


@settings(max_examples=300, deadline=None)
@given(scopes, st.sampled_from(KEYS), st.sampled_from(KEYS))
def test_guarded_comparisons_answer_in_python(scope: dict[str, Any], key: str, other: str) -> None:
    source = f"has(event.{key}) && event.{key} >= 3 || !(profile.{other} in journey)"
    condition = compile_condition(source)
    assert condition.subset is not None
    assert outcome(condition, scope) == outcome(cel_only(condition), scope)


def test_expressions_beyond_the_subset_have_no_python_form() -> None:
    for source in (
        "event.a + 1 > 2",
        "event.a[0] == 1",
        "event.a.startsWith('x')",
        "event.a == -1",
        "event.a == 1u",
        "event.a == 1e3",
        "event.a == 'a\\n'",
        "event.a.exists(x, x > 1)",
        "event.a == 1 == true",
        "int(event.a) > 1",
    ):
        assert compile_subset(source, frozenset(ROOTS)) is None, source


def test_every_library_condition_is_in_the_subset() -> None:
    sources = {
        match.strip().strip("'")
        for path in JOURNEYS.glob("*.yaml")
        for match in re.findall(r"when: (?:&\w+ )?(.+)", path.read_text())
        if not match.startswith("*")
    }
    assert sources
    for source in sources:
        assert compile_condition(source).subset is not None, source
