"""`orchestrator validate` on task files: one `FILE:LINE:COL: message` line per problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import jsonwire
from orchestrator.cli import main
from orchestrator.journey.library import load_tasks, task_schema

GOOD = """\
id: good
description: Good
starts: {event: x}
ends: {event: y}
process: {starts: {event: p}, ends: {event: q}}
"""

CASES: list[tuple[str, str, list[str]]] = [
    (
        "yaml-syntax",
        "id: a\n  description: x\n bad",
        [
            "tasks/t.yaml:2:14: YAML syntax error: mapping values are not allowed here; "
            "check the indentation and quoting here"
        ],
    ),
    (
        "empty",
        "",
        [
            "tasks/t.yaml:1:1: the file is empty, not a task: write a YAML mapping with id, "
            "description, starts, ends and process"
        ],
    ),
    (
        "not-a-mapping",
        "- a\n- b\n",
        [
            "tasks/t.yaml:1:1: the file is a list, not a task: write a YAML mapping with id, "
            "description, starts, ends and process"
        ],
    ),
    (
        "missing-and-unknown-fields",
        GOOD.replace("description: Good\n", "colour: red\n"),
        [
            "tasks/t.yaml:1:1: missing field 'description': add it",
            "tasks/t.yaml:2:9: unknown field 'colour': remove it or check its spelling",
        ],
    ),
    (
        "bad-id",
        GOOD.replace("id: good", "id: Bad Id"),
        [
            "tasks/t.yaml:1:5: id: String should match pattern '^[a-z0-9][a-z0-9_-]*$' "
            "(got 'Bad Id')"
        ],
    ),
    (
        "missing-event",
        GOOD.replace("ends: {event: y}", "ends: {when: 'true'}"),
        ["tasks/t.yaml:4:7: ends: missing field 'event': add it"],
    ),
    (
        "bad-within",
        GOOD + "within: 3 weeks\n",
        [
            "tasks/t.yaml:6:9: within: bad duration '3 weeks': write a number and a unit "
            "(ms, s, m, h, d, w), e.g. 30m, 24h, 7d"
        ],
    ),
    (
        "bad-match",
        GOOD + "match: order-id\n",
        [
            "tasks/t.yaml:6:8: match: 'order-id' is not a property name: write the name of an "
            "event property (letters, digits and _), e.g. order_id"
        ],
    ),
    (
        "cel-syntax",
        GOOD.replace("ends: {event: y}", "ends:\n  event: y\n  when: 'event.properties.n >'"),
        [
            "tasks/t.yaml:6:30: ends.when: CEL syntax error in 'event.properties.n >' at column "
            "21: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', "
            "'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}"
        ],
    ),
    (
        "cel-journey-variable",
        GOOD.replace("starts: {event: p}", 'starts: {event: p, when: profile.tier == "gold"}'),
        [
            "tasks/t.yaml:5:36: process.starts.when: a task's condition sees only `event` (the "
            "event being matched), not profile: write it over event.name, event.channel or "
            "event.properties"
        ],
    ),
    (
        "cel-unknown-variable",
        GOOD.replace("starts: {event: x}", "starts: {event: x, when: customer.vip}"),
        [
            "tasks/t.yaml:3:26: starts.when: a task's condition sees only `event` (the event "
            "being matched), not customer: write it over event.name, event.channel or "
            "event.properties"
        ],
    ),
    (
        "same-start-and-end",
        GOOD.replace("ends: {event: q}", "ends: {event: p}"),
        [
            "tasks/t.yaml:5:45: process.ends: the span starts and ends on the same event 'p': "
            "end it on the outcome event, or tell them apart with `when`"
        ],
    ),
]


def run_validate(capsys: pytest.CaptureFixture[str], *paths: str) -> tuple[int, list[str], str]:
    code = main(["validate", *paths])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_problem_is_one_located_line(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    expected: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "t.yaml").write_text(text)
    assert run_validate(capsys, "tasks") == (1, expected, "")


def test_task_ids_are_unique_across_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "a.yaml").write_text(GOOD)
    (tmp_path / "tasks" / "b.yaml").write_text("# the same task again\n" + GOOD)
    assert run_validate(capsys, "tasks") == (
        1,
        [
            "tasks/b.yaml:2:5: task id 'good' is already used by tasks/a.yaml: ids must be "
            "unique; rename one of them"
        ],
        "",
    )


def test_a_journey_directory_validates_its_tasks_beside_its_journeys(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lib" / "tasks").mkdir(parents=True)
    (tmp_path / "lib" / "j.yaml").write_text(
        "id: j\nname: J\ntrigger: {event: signup}\nsteps:\n  - id: a\n    wait: 1h\n"
    )
    (tmp_path / "lib" / "tasks" / "good.yaml").write_text(GOOD)
    assert run_validate(capsys, "lib") == (0, [], "ok: 1 journeys valid, 1 tasks valid\n")
    assert run_validate(capsys, "lib/tasks/good.yaml") == (0, [], "ok: 1 tasks valid\n")
    (tmp_path / "lib" / "tasks" / "good.yaml").write_text(GOOD.replace("id: good", "id: B"))
    code, out, _ = run_validate(capsys, "lib")
    assert (code, [line.split(":")[0] for line in out]) == (1, ["lib/tasks/good.yaml"])


def test_the_library_tasks_are_valid_and_name_events_its_journeys_use() -> None:
    library = Path(__file__).parent.parent / "journeys"
    tasks = load_tasks([library / "tasks"])
    assert {t.id for t in tasks} == {
        "order-to-doorstep",
        "signup-to-first-plan",
        "payment-back-on-track",
    }
    samples = "".join(p.read_text() for p in (library / "samples").glob("*.jsonl"))
    for task in tasks:
        for match in (task.starts, task.ends, task.process_starts, task.process_ends):
            assert f'"name":"{match.name}"' in samples, (task.id, match.name)


def test_the_committed_task_schema_is_up_to_date_and_fits_the_library(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    committed = Path(__file__).parent.parent / "journeys" / "tasks" / "task.schema.json"
    assert committed.read_text(encoding="utf-8") == task_schema(), (
        "journeys/tasks/task.schema.json is stale: run "
        "`orchestrator schema --tasks journeys/tasks/task.schema.json` and commit it"
    )
    out = tmp_path / "task.schema.json"
    assert main(["schema", "--tasks", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == task_schema()
    schema = jsonwire.loads(committed.read_bytes())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["required"]) == {"id", "description", "starts", "ends", "process"}
    assert set(schema["properties"]) == {*schema["required"], "match", "within"}
    assert schema["additionalProperties"] is False
    assert schema["$defs"]["TaskEvent"]["required"] == ["event"]
