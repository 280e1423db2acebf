"""`orchestrator simulate`: the output contract, event ordering, timers, --until, bad lines."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli import main
from orchestrator.engine.rules import choose_variant, split_bucket
from orchestrator.journey.library import load_journeys
from orchestrator.simulate import read_events
from tests.journey_fixtures import FIXTURES, TEMPLATES

CART = FIXTURES / "cart"
CART_EVENTS = CART / "events.jsonl"

REQUIRED_FIELDS = {
    "enter": {"type", "at", "customer_id", "journey", "version"},
    "send": {"type", "at", "customer_id", "journey", "step", "channel", "template", "content"},
    "suppress": {"type", "at", "customer_id", "journey", "step", "channel", "reason"},
    "exit": {"type", "at", "customer_id", "journey", "reason"},
}
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")
REASONS = {
    "suppress": {"opted_out", "no_consent", "no_address", "frequency_cap"},
    "exit": {"goal", "exit_event", "completed", "expired"},
}


def simulate(
    capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, list[dict[str, Any]], str]:
    """Run the CLI; return (exit code, decoded stdout lines, stderr)."""
    code = main(["simulate", *args])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def cart_variant(customer: str) -> str:
    """The variant the split rule gives `customer` at the cart journey's `test_subject` step."""
    [journey] = load_journeys([CART / "cart.yaml"])
    bucket = split_bucket(customer, "cart-abandonment", "test_subject")
    return choose_variant(bucket, journey.steps["test_subject"].arms)[0]


def summary(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (r["type"], r["at"], r["customer_id"], r.get("step"), r.get("channel"), r.get("reason"))
        for r in records
    ]


def test_cart_example_prints_the_contract_records(capsys: pytest.CaptureFixture[str]) -> None:
    code, records, err = simulate(capsys, str(CART), "--events", str(CART_EVENTS))
    assert code == 0, err
    for record in records:
        required = REQUIRED_FIELDS[record["type"]]
        optional = {"variant"} if record["type"] == "send" else set()
        assert required <= set(record) <= required | optional, record
        assert ISO_UTC.match(record["at"]), record["at"]
        assert record["journey"] == "cart-abandonment"
        if record["type"] in REASONS:
            assert record["reason"] in REASONS[record["type"]]
    assert [r["at"] for r in records] == sorted(r["at"] for r in records)  # virtual-time order
    assert summary(records) == [
        ("enter", "2026-05-01T09:30:00Z", "c1", None, None, None),
        ("send", "2026-05-01T10:30:00Z", "c1", "remind", "push", None),
        ("enter", "2026-05-01T11:00:00Z", "c5", None, None, None),
        ("suppress", "2026-05-01T12:00:00Z", "c5", "remind", "push", "opted_out"),
        ("send", "2026-05-01T12:00:00Z", "c5", "remind", "email", None),
        ("enter", "2026-05-01T12:00:00Z", "c4", None, None, None),
        # 14:30+02:00: the order comes before the 13:00Z reminder.
        ("exit", "2026-05-01T12:30:00Z", "c4", None, None, "goal"),
        # cart.viewed from the app (not the earlier one from the web) -> remember -> std_offer
        ("send", "2026-05-01T13:00:00Z", "c5", "std_offer", "email", None),
        ("exit", "2026-05-01T13:00:00Z", "c5", None, None, "completed"),
        ("enter", "2026-05-01T15:00:00Z", "c6", None, None, None),
        ("exit", "2026-05-01T15:10:00Z", "c6", None, None, "exit_event"),
        ("enter", "2026-05-01T20:30:00Z", "c2", None, None, None),
        # The 21:30 reminder waits for the 08:00 UTC send window; c2 has no push token.
        ("suppress", "2026-05-02T08:00:00Z", "c2", "remind", "push", "no_address"),
        ("send", "2026-05-02T08:00:00Z", "c2", "remind", "email", None),
        ("send", "2026-05-02T10:30:00Z", "c1", "gold_offer", "email", None),
        ("exit", "2026-05-02T10:30:00Z", "c1", None, None, "completed"),
        ("send", "2026-05-03T08:00:00Z", "c2", "std_offer", "email", None),
        ("exit", "2026-05-03T08:00:00Z", "c2", None, None, "completed"),
    ]
    sends = {(r["customer_id"], r["step"]): r for r in records if r["type"] == "send"}
    assert sends["c1", "remind"]["content"] == {"title": "Still thinking?", "body": "2 items wait"}
    assert sends["c1", "gold_offer"]["content"] == {
        "subject": "Your cart, Ada",
        "body": "Gold members get free shipping",
    }
    # c2's profile says fr: the subject is French, the body falls back to English.
    assert sends["c2", "remind"]["content"] == {
        "subject": "Votre panier, ami",
        "body": "1 items are waiting",
    }
    variant = cart_variant("c2")
    assert sends["c2", "std_offer"]["variant"] == variant
    assert sends["c2", "std_offer"]["content"] == {
        "subject": "10 % sur votre panier",
        "body": f"Variant {variant}: use code CART10",
    }
    assert "variant" not in sends["c5", "std_offer"]  # c5 never went through the split
    assert [r["version"] for r in records if r["type"] == "enter"] == [1] * 5


def test_events_are_applied_in_time_order_whatever_the_file_order(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, expected, _ = simulate(capsys, str(CART), "--events", str(CART_EVENTS))
    shuffled = tmp_path / "shuffled.jsonl"
    lines = CART_EVENTS.read_text().splitlines()
    shuffled.write_text("\n\n".join(lines[::-1]) + "\n")  # reversed, with blank lines
    code, records, err = simulate(capsys, str(CART), "--events", str(shuffled))
    assert code == 0, err
    assert records == expected


def write_journey(tmp_path: Path, head: str, steps: str) -> Path:
    (tmp_path / "templates").mkdir(exist_ok=True)
    for name, body in TEMPLATES.items():
        (tmp_path / "templates" / f"{name}.yaml").write_text(body)
    path = tmp_path / "j.yaml"
    path.write_text(
        "id: j\nname: J\ncategory: transactional\ntrigger: {event: start}\n"
        + textwrap.dedent(head)
        + "steps:\n"
        + textwrap.indent(textwrap.dedent(steps), "  ")
    )
    return path


def write_events(tmp_path: Path, *events: dict[str, Any] | str) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text("".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in events))
    return path


def ev(event_id: str, name: str, at: str, customer: str = "c1", **props: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "customer_id": customer,
        "name": name,
        "occurred_at": at,
        "properties": props,
    }


def test_ties_keep_file_order(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    journey = write_journey(tmp_path, "", "- id: hello\n  send: {channel: email, template: msg}\n")
    at = "2026-05-04T10:00:00Z"
    email = ev("p", "profile.updated", at, email="a@example.com")
    start = ev("s", "start", at)
    _, records, _ = simulate(
        capsys, str(journey), "--events", str(write_events(tmp_path, email, start))
    )
    assert [(r["type"], r.get("reason")) for r in records] == [
        ("enter", None),
        ("send", None),
        ("exit", "completed"),
    ]
    _, records, _ = simulate(
        capsys, str(journey), "--events", str(write_events(tmp_path, start, email))
    )
    assert [(r["type"], r.get("reason")) for r in records] == [
        ("enter", None),
        ("suppress", "no_address"),
        ("exit", "completed"),
    ]


WAIT_THEN_SEND = """
- id: pause
  wait: 1h
- id: hello
  send: {channel: in_app, template: msg}
"""


@pytest.mark.parametrize(
    ("buy_at", "expected"),
    [
        # The timer due at the event's time fires first: the send happens, then the goal.
        (
            "2026-05-04T11:00:00Z",
            [
                ("enter", "2026-05-04T10:00:00Z", None),
                ("send", "2026-05-04T11:00:00Z", None),
                ("exit", "2026-05-04T11:00:00Z", "completed"),
            ],
        ),
        (
            "2026-05-04T10:59:59Z",
            [
                ("enter", "2026-05-04T10:00:00Z", None),
                ("exit", "2026-05-04T10:59:59Z", "goal"),
            ],
        ),
    ],
)
def test_a_timer_due_at_or_before_an_event_fires_first(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    buy_at: str,
    expected: list[tuple[Any, ...]],
) -> None:
    journey = write_journey(tmp_path, "exit_when: [{event: buy, goal: true}]\n", WAIT_THEN_SEND)
    events = write_events(
        tmp_path, ev("b", "buy", buy_at), ev("s", "start", "2026-05-04T10:00:00Z")
    )
    code, records, _ = simulate(capsys, str(journey), "--events", str(events))
    assert code == 0
    assert [(r["type"], r["at"], r.get("reason")) for r in records] == expected


def test_a_timer_due_exactly_with_a_goal_event_is_not_lost_to_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    journey = write_journey(
        tmp_path,
        "exit_when: [{event: buy, goal: true}]\n",
        WAIT_THEN_SEND + "- id: later\n  wait: 1h\n",
    )
    events = write_events(
        tmp_path, ev("s", "start", "2026-05-04T10:00:00Z"), ev("b", "buy", "2026-05-04T11:00:00Z")
    )
    _, records, _ = simulate(capsys, str(journey), "--events", str(events))
    assert [(r["type"], r["at"], r.get("reason")) for r in records] == [
        ("enter", "2026-05-04T10:00:00Z", None),
        ("send", "2026-05-04T11:00:00Z", None),
        ("exit", "2026-05-04T11:00:00Z", "goal"),
    ]


@pytest.mark.parametrize(
    ("until", "types"),
    [
        (None, ["enter", "send", "exit"]),
        ("2026-05-04T10:59:59Z", ["enter"]),
        ("2026-05-04T11:00:00Z", ["enter", "send", "exit"]),
        ("2026-05-04T12:00:00+01:00", ["enter", "send", "exit"]),
        ("2026-05-04T11:30:00+01:00", ["enter"]),
    ],
)
def test_until_stops_timers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, until: str | None, types: list[str]
) -> None:
    journey = write_journey(tmp_path, "", WAIT_THEN_SEND)
    events = write_events(tmp_path, ev("s", "start", "2026-05-04T10:00:00Z"))
    extra = ["--until", until] if until else []
    code, records, _ = simulate(capsys, str(journey), "--events", str(events), *extra)
    assert code == 0
    assert [r["type"] for r in records] == types


def test_until_without_a_zone_is_an_error_not_a_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    journey = write_journey(tmp_path, "", WAIT_THEN_SEND)
    events = write_events(tmp_path, ev("s", "start", "2026-05-04T10:00:00Z"))
    code = main(["simulate", str(journey), "--events", str(events), "--until", "tomorrow"])
    assert code != 0
    assert "--until" in capsys.readouterr().err


def test_malformed_lines_are_reported_and_the_rest_processed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    journey = write_journey(tmp_path, "", "- id: hello\n  send: {channel: in_app, template: msg}\n")
    events = write_events(
        tmp_path,
        ev("1", "start", "2026-05-04T10:00:00Z", "c1"),
        "not json",
        json.dumps({"event_id": "3", "customer_id": "c3", "occurred_at": "2026-05-04T10:00:00Z"}),
        ev("4", "start", "2026-05-04T10:00:00", "c4"),  # no zone
        "",
        ev("6", "start", "9999-12-31T23:00:00Z", "c9"),  # out of range
        ev("7", "start", "2026-05-04T11:00:00Z", "c6"),
    )
    code, records, err = simulate(capsys, str(journey), "--events", str(events))
    assert code == 1
    assert [(r["type"], r["customer_id"]) for r in records] == [
        ("enter", "c1"),
        ("send", "c1"),
        ("exit", "c1"),
        ("enter", "c6"),
        ("send", "c6"),
        ("exit", "c6"),
    ]
    lines = err.splitlines()
    assert [line.split(": skipped")[0] for line in lines] == [
        f"{events}:2",
        f"{events}:3",
        f"{events}:4",
        f"{events}:6",
    ]
    assert "name" in lines[1]
    assert "time zone" in lines[2]
    assert "out of range" in lines[3]


def test_condition_errors_are_warnings_on_stderr(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    journey = write_journey(
        tmp_path,
        "",
        """
        - id: route
          branch:
            - when: profile.tier == "gold"
              next: gold
        - id: std
          send: {channel: in_app, template: msg}
          next: end
        - id: gold
          send: {channel: email, template: other}
        - id: end
          exit: {}
        """,
    )
    events = write_events(tmp_path, ev("s", "start", "2026-05-04T10:00:00Z"))
    code, records, err = simulate(capsys, str(journey), "--events", str(events))
    assert code == 0
    assert [r.get("step") for r in records if r["type"] == "send"] == ["std"]
    assert "route" in err
    assert 'profile.tier == "gold"' in err


def test_an_invalid_journey_is_reported_like_validate(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    journey = write_journey(tmp_path, "", "- id: hello\n  wait: soon\n")
    events = write_events(tmp_path, ev("s", "start", "2026-05-04T10:00:00Z"))
    code, records, err = simulate(capsys, str(journey), "--events", str(events))
    assert (code, records) == (1, [])
    assert err.startswith(f"{journey}:7:")
    assert "bad duration 'soon'" in err


def test_a_missing_events_file_is_an_error_not_a_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(["simulate", str(CART), "--events", str(tmp_path / "nope.jsonl")])
    assert code == 1
    assert "nope.jsonl" in capsys.readouterr().err


def test_simulate_output_is_deterministic(capsys: pytest.CaptureFixture[str]) -> None:
    runs = [simulate(capsys, str(CART), "--events", str(CART_EVENTS)) for _ in range(2)]
    assert runs[0] == runs[1]


def test_events_with_the_engines_own_names_are_refused_from_input() -> None:
    lines = [
        '{"event_id":"f1","customer_id":"c1","name":"timer.fired","occurred_at":'
        '"2026-06-01T10:00:00Z","properties":{"journey":"j","instance":"j:1","timer":"1"}}',
        '{"event_id":"f2","customer_id":"c1","name":"journey.archived","occurred_at":'
        '"2026-06-01T10:00:00Z","properties":{"journey":"j"}}',
    ]
    events, bad = read_events(lines)
    assert events == []
    assert [b.number for b in bad] == [1, 2]
    assert all("reserved for the engine" in b.reason for b in bad)


def test_simulate_applies_the_global_cap_setting(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journey = write_journey(
        tmp_path,
        "",
        """
        - id: first
          send: {channel: email, template: msg, fallback: [in_app]}
        - id: second
          send: {channel: email, template: msg, fallback: [in_app]}
        """,
    )
    events = write_events(
        tmp_path,
        ev("p", "profile.updated", "2026-05-01T09:00:00Z", email="ada@example.com"),
        ev("s", "start", "2026-05-01T09:01:00Z"),
    )
    monkeypatch.setenv("ORCHESTRATOR_GLOBAL_CAP", '{"email": [1, "1d"]}')
    code, records, err = simulate(capsys, str(journey), "--events", str(events))
    assert code == 0, err
    assert [(r["type"], r["step"], r["channel"], r.get("reason")) for r in records[1:4]] == [
        ("send", "first", "email", None),
        ("suppress", "second", "email", "global_cap"),
        ("send", "second", "in_app", None),
    ]
    monkeypatch.setenv("ORCHESTRATOR_GLOBAL_CAP", '{"email": [0, "1d"]}')
    code, _, err = simulate(capsys, str(journey), "--events", str(events))
    assert code == 2 and "ORCHESTRATOR_GLOBAL_CAP" in err
