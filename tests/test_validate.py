"""`orchestrator validate`: one `FILE:LINE:COL: message` line per problem, never a traceback."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.cli import main
from tests.journey_fixtures import FIXTURES

TEMPLATE_T = """\
email: {subject: "Hi {{ profile.first_name }}", body: "Body"}
push: {title: "T", body: "B"}
"""

HEAD = """\
id: j
name: J
trigger:
  event: signup
steps:
"""


def validate(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    journey: str,
    templates: dict[str, str] | None = None,
) -> tuple[int, list[str], str]:
    """Write `journey.yaml` (and templates/) in tmp_path and validate it from there."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "templates").mkdir()
    for name, text in {"t": TEMPLATE_T, **(templates or {})}.items():
        (tmp_path / "templates" / f"{name}.yaml").write_text(textwrap.dedent(text))
    (tmp_path / "journey.yaml").write_text(journey)
    code = main(["validate", "journey.yaml"])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def steps(text: str) -> str:
    """HEAD followed by steps written at column 0 (indented under `steps:` here)."""
    return HEAD + textwrap.indent(textwrap.dedent(text), "  ")


CASES: list[tuple[str, str, dict[str, str], list[str]]] = [
    (
        "yaml-syntax",
        steps(
            """\
            - id: a
              wait: 1h
            - id: b
             send: x
            """
        ),
        {},
        [
            "journey.yaml:9:4: YAML syntax error: expected <block end>, but found "
            "'<block mapping start>'; check the indentation and quoting here"
        ],
    ),
    (
        "unknown-top-level-field",
        HEAD.replace("name: J\n", "name: J\ncolour: red\n") + "  - id: a\n    wait: 1h\n",
        {},
        ["journey.yaml:3:9: unknown field 'colour': remove it or check its spelling"],
    ),
    (
        "unknown-step-field",
        steps("- id: a\n  wait: 1h\n  colour: red\n"),
        {},
        ["journey.yaml:8:13: step 'a': unknown field 'colour': remove it or check its spelling"],
    ),
    (
        "unknown-send-field",
        steps("- id: a\n  send: {channel: email, template: t, subjct: Hi}\n"),
        {},
        [
            "journey.yaml:7:49: step 'a': send: unknown field 'subjct': remove it or check its "
            "spelling"
        ],
    ),
    (
        "misspelt-step-kind",
        steps("- id: a\n  wiat: 1h\n"),
        {},
        [
            "journey.yaml:7:11: step 'a': unknown field 'wiat': a step needs exactly one of: "
            "wait, wait_for, send, branch, split, update_profile, exit"
        ],
    ),
    (
        "two-step-kinds",
        steps("- id: a\n  wait: 1h\n  send: {channel: email, template: t}\n"),
        {},
        [
            "journey.yaml:8:11: step 'a': a step does exactly one thing but this one has wait "
            "and send: make them separate steps"
        ],
    ),
    (
        "missing-journey-field",
        HEAD.replace("name: J\n", "") + "  - id: a\n    wait: 1h\n",
        {},
        ["journey.yaml:1:1: missing field 'name': add it"],
    ),
    (
        "missing-step-field",
        steps("- id: a\n  wait_for: {event: clicked}\n"),
        {},
        ["journey.yaml:7:15: step 'a': wait_for: missing field 'timeout': add it"],
    ),
    (
        "missing-step-id",
        steps("- wait: 1h\n"),
        {},
        ["journey.yaml:6:5: step #1: missing field 'id': add it"],
    ),
    (
        "branch-case-without-next",
        steps(
            """\
            - id: a
              branch:
                - when: profile.vip == true
                - default: b
            - id: b
              wait: 1h
            """
        ),
        {},
        ["journey.yaml:8:9: step 'a': branch.0: missing field 'next': add it"],
    ),
    (
        "unknown-step-reference",
        steps("- id: a\n  wait: 1h\n  next: nowhere\n- id: b\n  wait: 1h\n"),
        {},
        ["journey.yaml:8:11: step 'a': unknown step 'nowhere': use one of a, b"],
    ),
    (
        "unknown-wait-for-target",
        steps("- id: a\n  wait_for: {event: x, timeout: 1h, on_timeout: later}\n"),
        {},
        ["journey.yaml:7:51: step 'a': unknown step 'later': use one of a"],
    ),
    (
        "duplicate-step-id",
        steps("- id: a\n  wait: 1h\n- id: a\n  wait: 2h\n"),
        {},
        [
            "journey.yaml:8:9: duplicate step id 'a' (first used by step #1): give each step "
            "its own id"
        ],
    ),
    (
        "unreachable-step",
        steps("- id: a\n  wait: 1h\n  next: c\n- id: b\n  wait: 1h\n- id: c\n  exit: {}\n"),
        {},
        [
            "journey.yaml:9:9: step 'b' is unreachable: no step leads to it; point a `next`, "
            "branch or wait_for target at it, or remove it"
        ],
    ),
    (
        "bad-duration",
        steps("- id: a\n  wait: 1 hour\n"),
        {},
        [
            "journey.yaml:7:11: step 'a': wait: bad duration '1 hour': write a number and a "
            "unit (ms, s, m, h, d, w), e.g. 30m, 24h, 7d"
        ],
    ),
    (
        "zero-duration",
        HEAD + "  - id: a\n    wait: 1h\nmax_duration: 0d\n",
        {},
        [
            "journey.yaml:8:15: max_duration: bad duration '0d': it must be longer than zero",
        ],
    ),
    (
        "huge-duration",
        steps("- id: a\n  wait: 99999999w\n"),
        {},
        [
            "journey.yaml:7:11: step 'a': wait: bad duration '99999999w': it must be at most "
            "100 years (36500d)"
        ],
    ),
    (
        "template-does-not-exist",
        steps("- id: a\n  send: {channel: email, template: nope}\n"),
        {},
        [
            "journey.yaml:7:38: step 'a': template 'nope' does not exist: create "
            "templates/nope.yaml beside the journey, or pass --templates DIR"
        ],
    ),
    (
        "template-missing-channel",
        steps("- id: a\n  send: {channel: email, template: t, fallback: [push, sms]}\n"),
        {},
        [
            "journey.yaml:7:58: step 'a': template 't' has no sms content: add a `sms:` "
            "section to templates/t.yaml"
        ],
    ),
    (
        "template-liquid-syntax-error",
        steps("- id: a\n  send: {channel: email, template: bad}\n"),
        {"bad": 'email: {subject: "Hi {{ profile.first_name ", body: "B"}\n'},
        [
            "templates/bad.yaml:1:18: template 'bad': Liquid error: expected '}}', found end of "
            "file; fix the {{ }} or {% %} markup"
        ],
    ),
    (
        "template-unclosed-tag",
        steps("- id: a\n  send: {channel: email, template: bad}\n"),
        {"bad": 'email:\n  subject: "{% if profile.vip %}VIP"\n  body: "B"\n'},
        [
            "templates/bad.yaml:2:12: template 'bad': Liquid error: expected tag endif, found "
            "end of expression; fix the {{ }} or {% %} markup"
        ],
    ),
    (
        "template-unknown-filter",
        steps("- id: a\n  send: {channel: email, template: bad}\n"),
        {"bad": 'email:\n  subject: "S"\n  body: "{{ profile.first_name | shout }}"\n'},
        [
            "templates/bad.yaml:3:9: template 'bad': unknown Liquid filter 'shout': use a "
            "standard filter such as default, upcase, size, date"
        ],
    ),
    (
        "template-does-not-render",
        steps("- id: a\n  send: {channel: email, template: bad}\n"),
        {
            "bad": (
                "email: {subject: S, body: B}\nlocales:\n  fr:\n"
                '    email: {body: "{{ 10 | divided_by: 0 }}"}\n'
            )
        },
        [
            "templates/bad.yaml:4:12: template 'bad': email content does not render: "
            "divided_by: can't divide by 0; fix the Liquid expression"
        ],
    ),
    (
        "template-yaml-syntax",
        steps("- id: a\n  send: {channel: email, template: bad}\n"),
        {"bad": "email: {subject: S, body: B\n"},
        [
            "templates/bad.yaml:2:1: YAML syntax error: expected ',' or '}', but got "
            "'<stream end>'; check the indentation and quoting here"
        ],
    ),
    (
        "template-unknown-field",
        steps("- id: a\n  send: {channel: email, template: bad}\n"),
        {"bad": "email: {subject: S, body: B, footer: F}\n"},
        [
            "templates/bad.yaml:1:8: template 'bad': email has no field footer: its fields are "
            "body, html, subject"
        ],
    ),
    (
        "template-unknown-channel",
        steps("- id: a\n  send: {channel: email, template: bad}\n"),
        {"bad": "email: {subject: S, body: B}\nfax: {body: B}\n"},
        [
            "templates/bad.yaml:2:6: template 'bad': unknown channel 'fax': use one of email, "
            "sms, whatsapp, push, in_app, webhook"
        ],
    ),
    (
        "update-profile-unknown-filter",
        steps('- id: a\n  update_profile: {seen: "{{ event.occurred_at | when }}"}\n'),
        {},
        [
            "journey.yaml:7:28: step 'a': update_profile seen: unknown Liquid filter 'when': "
            "use a standard filter such as default, upcase, size, date"
        ],
    ),
    (
        "unknown-channel",
        steps("- id: a\n  send: {channel: fax, template: t}\n"),
        {},
        [
            "journey.yaml:7:21: step 'a': send.channel: Input should be 'email', 'sms', 'push', "
            "'whatsapp', 'webhook' or 'in_app' (got 'fax')"
        ],
    ),
    (
        "split-weights",
        steps(
            """\
            - id: a
              split:
                - {variant: A, weight: 50, next: b}
                - {variant: B, weight: 40, next: b}
            - id: b
              exit: {}
            """
        ),
        {},
        [
            "journey.yaml:8:7: step 'a': split weights add up to 90, not 100: adjust them so "
            "they sum to 100"
        ],
    ),
    (
        "split-holdout-arms",
        steps(
            """\
            - id: a
              split:
                - {variant: A, weight: 50, next: b}
                - {variant: H, weight: 30, holdout: true, next: b}
                - {variant: G, weight: 10, holdout: true}
                - {variant: B, weight: 10}
            - id: b
              exit: {}
            """
        ),
        {},
        [
            "journey.yaml:9:43: step 'a': holdout arm 'H' needs the journey's `max_duration`: "
            "without it held-out customers who never convert wait forever; set max_duration",
            "journey.yaml:9:55: step 'a': holdout arm 'H' must not have `next`: its customers "
            "get nothing and wait for an exit rule or max_duration; remove `next`",
            "journey.yaml:10:43: step 'a': arm 'G' is a second holdout arm (after 'H'): a split "
            "has at most one; merge their weights into one holdout arm",
            "journey.yaml:11:9: step 'a': arm 'B' has no `next`: name the step its customers go "
            "to (only a `holdout: true` arm has none)",
        ],
    ),
    (
        "unknown-survey",
        steps("- id: a\n  send: {channel: email, template: t, survey: ces}\n"),
        {},
        ["journey.yaml:7:49: step 'a': send.survey: Input should be 'nps' or 'csat' (got 'ces')"],
    ),
    (
        "cycle-without-wait",
        steps(
            """\
            - id: a
              wait: 1h
            - id: b
              branch:
                - when: profile.vip == true
                  next: c
            - id: c
              update_profile: {seen: "yes"}
              next: b
            """
        ),
        {},
        [
            "journey.yaml:8:9: steps b -> c -> b form a loop without a wait: add a wait or "
            "wait_for step to the loop so a customer cannot spin forever"
        ],
    ),
    (
        "default-not-last",
        steps(
            """\
            - id: a
              branch:
                - default: b
                - when: profile.vip == true
                  next: b
            - id: b
              exit: {}
            """
        ),
        {},
        [
            "journey.yaml:8:9: step 'a': `default` must be the last case of a branch; cases "
            "after it could never match"
        ],
    ),
    (
        "bad-step-id",
        steps("- id: Bad Id\n  wait: 1h\n"),
        {},
        [
            "journey.yaml:6:9: step 'Bad Id': id: String should match pattern "
            "'^[a-z0-9][a-z0-9_-]*$' (got 'Bad Id')"
        ],
    ),
    (
        "empty-send-window",
        HEAD + "  - id: a\n    wait: 1h\nsend_window: {start: '08:00', end: '08:00'}\n",
        {},
        [
            "journey.yaml:8:14: send_window start and end are equal: the window would never "
            "open; widen it or remove it"
        ],
    ),
    (
        "bad-send-window-time",
        HEAD + "  - id: a\n    wait: 1h\nsend_window: {start: 8am, end: '21:00'}\n",
        {},
        [
            "journey.yaml:8:22: send_window.start: bad time '8am': write HH:MM on a 24-hour "
            "clock, e.g. 08:00, 21:30"
        ],
    ),
    (
        "exit-with-settings",
        steps("- id: a\n  wait: 1h\n- id: b\n  exit: {reason: done}\n"),
        {},
        [
            "journey.yaml:9:11: step 'b': exit: exit takes no settings (got reason): "
            "write `exit: {}`"
        ],
    ),
    (
        "bad-reentry",
        HEAD + "  - id: a\n    wait: 1h\nreentry: {after: 3 days}\n",
        {},
        [
            "journey.yaml:8:18: reentry.after: bad duration '3 days': write a number and a "
            "unit (ms, s, m, h, d, w), e.g. 30m, 24h, 7d"
        ],
    ),
    (
        "several-problems-in-file-order",
        steps(
            """\
            - id: a
              wait: 1h
              next: zzz
            - id: b
              send: {channel: email, template: t}
            - id: b
              wait: 2h
            """
        ),
        {},
        [
            "journey.yaml:8:11: step 'a': unknown step 'zzz': use one of a, b",
            "journey.yaml:11:9: duplicate step id 'b' (first used by step #2): give each step "
            "its own id",
        ],
    ),
]


@pytest.mark.parametrize(
    ("journey", "templates", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_each_problem_is_one_located_line(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    journey: str,
    templates: dict[str, str],
    expected: list[str],
) -> None:
    code, lines, err = validate(capsys, tmp_path, monkeypatch, journey, templates)
    assert (code, lines) == (1, expected)
    assert "Traceback" not in err


def column_of(text: str, line: int, needle: str) -> int:
    """1-based column of `needle` on 1-based `line` of `text`."""
    return text.splitlines()[line - 1].index(needle) + 1


@pytest.mark.parametrize(
    ("when", "line", "points_at"),
    [
        # (the condition as written in YAML, its error line, the text the column points at)
        ("event.properties.total >= ) 50", 5, ") 50"),
        ("'event.properties.total >= ) 50'", 5, ") 50"),
        ('"event.name == \\"x\\" && ) || true"', 5, ") || true"),
        ('"event.name == \\u0022\\x78\\" && ) || true"', 5, ") || true"),
        ("'event.name == ''x'' && ) || true'", 5, ") || true"),
        ("|\n    profile.tier == 'gold' ||\n    profile.x == ) && true", 7, ") && true"),
        (">\n    profile.tier == 'gold' &&\n    profile.x == ) && true", 7, ") && true"),
        ("profile.tier == 'gold' &&\n    profile.x == ) && true", 6, ") && true"),
    ],
)
def test_cel_syntax_errors_point_at_the_offending_character(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    when: str,
    line: int,
    points_at: str,
) -> None:
    journey = f"id: j\nname: J\ntrigger:\n  event: signup\n  when: {when}\nsteps:\n"
    journey += "  - id: a\n    wait: 1h\n"
    code, lines, _ = validate(capsys, tmp_path, monkeypatch, journey)
    assert code == 1
    [problem] = lines
    col = column_of(journey, line, points_at)
    prefix = f"journey.yaml:{line}:{col}: trigger.when: CEL syntax error in "
    assert problem.startswith(prefix), problem
    assert "input ')'" in problem


def test_cel_syntax_error_at_the_end_of_the_expression(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journey = steps(
        """\
        - id: a
          wait_for: {event: x, when: 'event.name == "x" ||', timeout: 1h}
        """
    )
    _, [problem], _ = validate(capsys, tmp_path, monkeypatch, journey)
    col = column_of(journey, 7, "||'") + 2  # just after `||`, where the operand is missing
    assert problem.startswith(
        f"journey.yaml:7:{col}: step 'a': wait_for.when: CEL syntax error in "
        "'event.name == \"x\" ||' at column 21: Syntax error: mismatched input '<EOF>'"
    ), problem


def test_unknown_cel_variable_points_at_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journey = steps(
        """\
        - id: a
          branch:
            - when: profile.vip == true || customer.vip == true
              next: b
        - id: b
          wait: 1h
        """
    )
    code, lines, _ = validate(capsys, tmp_path, monkeypatch, journey)
    col = column_of(journey, 8, "customer.vip")
    assert (code, lines) == (
        1,
        [
            f"journey.yaml:8:{col}: step 'a': branch.0.when: unknown variable customer in "
            "'profile.vip == true || customer.vip == true': conditions can use only event, "
            "profile and journey (e.g. event.properties.total, profile.tier)"
        ],
    )


def test_a_loop_through_a_wait_is_valid(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journey = steps(
        """\
        - id: a
          wait: 1d
        - id: b
          send: {channel: email, template: t}
        - id: c
          branch:
            - when: profile.vip == true
              next: a
        - id: d
          wait_for: {event: clicked, timeout: 1h, on_timeout: b}
        """
    )
    code, lines, err = validate(capsys, tmp_path, monkeypatch, journey)
    assert (code, lines) == (0, [])
    assert err == "ok: 1 journeys valid\n"


def test_a_holdout_arm_with_max_duration_and_a_survey_send_are_valid(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journey = "max_duration: 14d\n" + steps(
        """\
        - id: a
          split:
            - {variant: control, weight: 90, next: b}
            - {variant: holdout, weight: 10, holdout: true}
        - id: b
          send: {channel: email, template: t, survey: csat}
        """
    )
    code, lines, err = validate(capsys, tmp_path, monkeypatch, journey)
    assert (code, lines, err) == (0, [], "ok: 1 journeys valid\n")


def test_the_cart_example_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(FIXTURES / "cart")]) == 0
    out, err = capsys.readouterr()
    assert (out, err) == ("", "ok: 1 journeys valid\n")


def test_templates_dir_option(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "far.yaml").write_text(TEMPLATE_T)
    (tmp_path / "journey.yaml").write_text(
        steps("- id: a\n  send: {channel: email, template: far}\n")
    )
    assert main(["validate", "journey.yaml"]) == 1
    assert "template 'far' does not exist" in capsys.readouterr().out
    assert main(["validate", "journey.yaml", "--templates", "elsewhere"]) == 0


def test_journey_ids_must_be_unique_across_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("one.yaml", "two.yaml"):
        (tmp_path / name).write_text(steps("- id: a\n  wait: 1h\n"))
    assert main(["validate", "."]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "two.yaml:1:1: journey id 'j' is already used by one.yaml: ids must be unique; "
        "rename one of them"
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            b"",
            "journey.yaml:1:1: the file is empty, not a journey: write a YAML mapping with id, "
            "name, trigger and steps",
        ),
        (
            b"- a\n- b\n",
            "journey.yaml:1:1: the file is a list, not a journey: write a YAML "
            "mapping with id, name, trigger and steps",
        ),
        (
            b"hello\n",
            "journey.yaml:1:1: the file is a str, not a journey: write a YAML mapping "
            "with id, name, trigger and steps",
        ),
        (b"\xff\xfe\x00id: j\n", "journey.yaml:1:1: not UTF-8 text: save the file as UTF-8"),
        (b"id: j\nsteps: nope\n", None),
        (b"id: j\nname: J\ntrigger: signup\nsteps: []\n", None),
        (b"id: [j\n", None),
        (b"\tid: j\n", None),
        (b"id: j\nname: J\ntrigger: {event: x}\nsteps:\n  - [1, 2]\n", None),
        (b"id: j\nname: J\ntrigger: {event: x}\nsteps:\n  - {id: a, wait: 1h}\n  - 7\n", None),
        (
            b"? [a, b]\n: c\n",
            "journey.yaml:1:3: YAML error: a key must be a plain name, not a list or mapping",
        ),
        (
            b"id: !!python/object:os.system ls\n",
            "journey.yaml:1:5: YAML error: could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/object:os.system'",
        ),
        (b"a: &x [1, *x]\n", None),
        (b"id: j\nname: J\ntrigger: {event: x}\nsteps: [{id: a, wait: !!int 3}]\n", None),
    ],
)
def test_malformed_files_are_problems_not_tracebacks(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    content: bytes,
    expected: str | None,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "journey.yaml").write_bytes(content)
    assert main(["validate", "journey.yaml"]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines
    assert all(line.startswith("journey.yaml:") for line in lines), lines
    if expected is not None:
        assert lines == [expected]
    assert "Traceback" not in err


def test_a_directory_without_journeys(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["validate", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "no journey files found" in err


def test_a_missing_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "missing.yaml"]) == 1
    assert capsys.readouterr().out == (
        "missing.yaml:1:1: cannot read the file: No such file or directory\n"
    )


CART_TEXT = (FIXTURES / "cart" / "cart.yaml").read_text()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    start=st.integers(0, len(CART_TEXT)),
    length=st.integers(0, 40),
    insert=st.text(alphabet=" :-{}[]|>'\"\n\tabc01_.!&*#%@", max_size=8),
)
def test_any_edit_of_a_valid_journey_validates_without_a_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, start: int, length: int, insert: str
) -> None:
    path = tmp_path / "fuzz" / "cart.yaml"
    if not path.parent.exists():
        path.parent.mkdir()
        (path.parent / "templates").symlink_to(FIXTURES / "cart" / "templates")
    path.write_text(CART_TEXT[:start] + insert + CART_TEXT[start + length :])
    code = main(["validate", str(path)])
    out, _ = capsys.readouterr()
    assert code in (0, 1)
    if code == 1:
        for line in out.splitlines():
            file, line_no, col, message = line.split(":", 3)
            assert file.endswith(".yaml")
            assert int(line_no) >= 1
            assert int(col) >= 1
            assert message.strip()
