"""The fast Liquid renderer renders every template exactly as python-liquid does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from liquid import Environment
from liquid.exceptions import LiquidError

from orchestrator.journey.library import load_journeys
from orchestrator.journey.liquid_subset import SubsetTemplate
from orchestrator.journey.templates import TemplateError, parse_liquid

# The engine's template environment: python-liquid's defaults (no autoescape, lenient
# undefined); the subset must match it.
LIQUID = Environment()
JOURNEYS = Path(__file__).resolve().parent.parent / "journeys"
KEYS = ("a", "b", "size", "first", "last", "x")
ROOTS = ("event", "profile", "journey", "nobody", "today", "nil", "empty", "true")
TEXT = st.text(alphabet="ab <>&\"'é\n{}%#|.", max_size=12)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False)
    | st.text(alphabet="ab<>&\"' é0", max_size=6)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner),
    max_leaves=10,
)
scopes = st.fixed_dictionaries(
    {"event": values, "profile": values, "journey": values},
    optional={"item": values},
)


@st.composite
def outputs(draw: st.DrawFn, item: str | None = None) -> str:
    """A `{{ path }}` or `{{ path | default: 'text' }}` output, sometimes out of the subset;
    inside a loop, often of the loop's `item`."""
    path = draw(st.sampled_from(ROOTS if item is None else (item, item, *ROOTS)))
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            path += "." + draw(st.sampled_from(KEYS))
        else:
            path += f"[{draw(st.integers(0, 3))}]"
    space = draw(st.sampled_from(("", " ", "\n")))
    if draw(st.booleans()):
        quote = draw(st.sampled_from("'\""))
        literal = draw(st.text(alphabet="ab <&>é", max_size=5))
        path += f"{space}| default: {quote}{literal}{quote}"
    tag = draw(
        st.sampled_from(("{{ %s }}", "{{%s}}", "{{- %s }}", "{{ %s -}}", "{{ %s | upcase }}"))
    )
    return tag % (space + path + space)


@st.composite
def loops(draw: st.DrawFn) -> str:
    """A `{% for %}` loop over a path, its body text and outputs (often of its item)."""
    name = draw(st.sampled_from(("item", "x", "forloop", "profile")))
    path = draw(st.sampled_from(ROOTS)) + "".join(
        draw(st.lists(st.sampled_from([f".{key}" for key in KEYS] + ["[0]"]), max_size=2))
    )
    limit = draw(st.sampled_from(("", " limit: 0", " limit: 2", " limit:1", " reversed")))
    body = draw(st.lists(TEXT | outputs(name), max_size=3))
    dash = draw(st.sampled_from(("", "-")))
    end = draw(st.sampled_from(("{% endfor %}", "{%- endfor %}", "{% endfor -%}", "")))
    return f"{{%{dash} for {name} in {path}{limit} %}}{''.join(body)}{end}"


templates = st.lists(TEXT | outputs() | loops(), min_size=1, max_size=5).map("".join)


def reference(source: str, scope: dict[str, Any]) -> str:
    """python-liquid's rendering."""
    return LIQUID.from_string(source).render(**scope)


@settings(max_examples=600, deadline=None)
@given(templates, scopes)
def test_renders_as_python_liquid(source: str, scope: dict[str, Any]) -> None:
    try:
        bound = LIQUID.from_string(source)
    except LiquidError:
        with pytest.raises(TemplateError):
            parse_liquid(source)
        return
    template = parse_liquid(source)
    try:
        expected = bound.render(**scope)
    except LiquidError as exc:
        with pytest.raises(type(exc)):
            template.render(**scope)
        return
    assert template.render(**scope) == expected


@settings(max_examples=300, deadline=None)
@given(scopes)
def test_outputs_in_the_subset_render_fast_and_equal(scope: dict[str, Any]) -> None:
    source = (
        "Hi {{ profile.a | default: 'there' }}, <b>{{ event.b.x }}</b> "
        '{{ journey[0].first }} {{ event.a[1] | default: "n/a" }}{{ nobody.size }}\n'
        "{% for item in event.c limit: 2 %}\n- {{ item.a }}: {{ item | default: '0' }}\n"
        "{%- endfor %}\n end"
    )
    template = parse_liquid(source)
    assert isinstance(template, SubsetTemplate)
    assert template.render(**scope) == reference(source, scope)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.dictionaries(st.sampled_from(KEYS), values) | values, max_size=4),
    st.sampled_from(("", " limit: 0", " limit: 1", " limit: 3", " limit:9")),
    st.lists(st.sampled_from(("", "-")), min_size=4, max_size=4),
    st.text(alphabet="ab <>&\"'é\n\t", max_size=8),
)
def test_loops_over_lists_render_fast_and_equal(
    items: list[Any], limit: str, dashes: list[str], text: str
) -> None:
    scope = {"event": {"c": items}, "profile": {"a": text}, "journey": {}}
    first, second, third, fourth = dashes
    source = (
        f"Hi {{{{ profile.a }}}}\n{{%{first} for item in event.c{limit} {second}%}}\n"
        f"- {{{{ item.a }}}}, {{{{ item.b | default: 'x' }}}} {text}\n"
        f"{{%{third} endfor {fourth}%}}\n end"
    )
    template = parse_liquid(source)
    assert isinstance(template, SubsetTemplate)
    assert template.render(**scope) == reference(source, scope)


def test_markup_beyond_the_subset_renders_through_python_liquid() -> None:
    for source in (
        "{% if profile.a %}yes{% endif %}",
        "{{ profile.a | upcase }}",
        "{{ true }}",
        "{{ profile.a | default: 'x', allow_false: true }}",
        "{{ profile['a'] }}",
        "{# note #}{{ profile.a }}",
        "{% for x in profile.a %}{{ forloop.index }}{% endfor %}",
        "{% for x in profile.a %}{% for y in x %}{{ y }}{% endfor %}{% endfor %}",
        "{% for x in profile.a offset: 1 %}{{ x }}{% endfor %}",
    ):
        assert not isinstance(parse_liquid(source), SubsetTemplate), source


def test_most_library_content_is_in_the_subset() -> None:
    fields = [
        value
        for journey in load_journeys([JOURNEYS])
        for template in journey.templates.values()
        for channels in template.content.values()
        for content in channels.values()
        for value in content.values()
        if hasattr(value, "render")
    ]
    fast = sum(isinstance(value, SubsetTemplate) for value in fields)
    assert fast >= 0.8 * len(fields), (fast, len(fields))
