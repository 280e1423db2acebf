"""Feedback routing rules: validation as FILE:LINE:COL lines, and routing decisions (pure)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator import jsonwire
from orchestrator.cli import main
from orchestrator.contracts.events import EventRecord
from orchestrator.errors import JourneyValidationError
from orchestrator.feedback.items import feedback_of, item_id_of, notifications, routed_record
from orchestrator.journey.routing import FeedbackText, Route, compile_routing, read_routing
from orchestrator.journey.textmatch import contains, phrase_of, words_of

LIBRARY_RULES = Path(__file__).parent.parent / "journeys" / "routing" / "northwind.yaml"

RULES = """\
routing: test
triage: triage
teams:
  billing: {webhook: "https://hooks.example/billing", email: billing@example.com}
  delivery: {}
  product: {}
  triage: {}
rules:
  - id: refunds
    team: billing
    keywords:
      en: [refund, "charged twice"]
      fr: [remboursement, "débité deux fois"]
  - id: parcels
    team: delivery
    keywords:
      en: [parcel]
      any: [dhl]
  - id: low-rating
    team: product
    when: item.source == "app.review" && int(item.properties.rating) <= 2
  - id: vip-parcels
    team: billing
    when: profile.tier == "vip"
    keywords:
      en: [late]
"""


def _route(text: str, **fields: object) -> Route:
    table = compile_routing("rules.yaml", RULES)
    values: dict[str, object] = {"text": text, "source": "survey.answered", "customer_id": "c"}
    values.update(fields)
    return table.route(FeedbackText(**values))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "fields", "team", "rule", "keyword"),
    [
        ("I want a REFUND now", {"locale": "en"}, "billing", "refunds", "refund"),
        ("You charged   twice!", {"locale": "en-GB"}, "billing", "refunds", "charged twice"),
        # Accents and case do not matter, either way round.
        ("Debite deux FOIS", {"locale": "fr_CA"}, "billing", "refunds", "débité deux fois"),
        ("Je veux un rembourSEMENT", {"locale": "fr"}, "billing", "refunds", "remboursement"),
        # Whole words only: "refunded" is not "refund", "parcels" not "parcel".
        ("they refunded me", {"locale": "en"}, "triage", None, None),
        ("two parcels", {"locale": "en"}, "triage", None, None),
        # A known language uses its own list (and `any`), not another language's.
        ("remboursement", {"locale": "en"}, "triage", None, None),
        ("parcel via DHL", {"locale": "de"}, "delivery", "parcels", "dhl"),
        # No locale: every list may match.
        ("remboursement", {}, "billing", "refunds", "remboursement"),
        # First match wins: refunds comes before parcels.
        ("refund for the parcel", {"locale": "en"}, "billing", "refunds", "refund"),
        # CEL over the item.
        (
            "meh",
            {"source": "app.review", "properties": {"rating": 1}},
            "product",
            "low-rating",
            None,
        ),
        ("meh", {"source": "app.review", "properties": {"rating": 5}}, "triage", None, None),
        # A CEL error (no rating) is no match, not a crash.
        ("meh", {"source": "app.review"}, "triage", None, None),
        # `when` and `keywords` both must hold.
        (
            "late again",
            {"locale": "en", "profile": {"tier": "vip"}},
            "billing",
            "vip-parcels",
            "late",
        ),
        ("late again", {"locale": "en", "profile": {"tier": "basic"}}, "triage", None, None),
    ],
)
def test_routing_decisions(
    text: str, fields: dict[str, object], team: str, rule: str | None, keyword: str | None
) -> None:
    assert _route(text, **fields) == Route(team, rule, keyword)


def test_theme_names_the_rule_and_keyword() -> None:
    assert Route("billing", "refunds", "charged twice").theme == "refunds:charged twice"
    assert Route("product", "low-rating").theme == "low-rating"
    assert Route("triage").theme == "triage"


def _problems(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> list[str]:
    routing = tmp_path / "routing"
    routing.mkdir()
    (routing / "rules.yaml").write_text(textwrap.dedent(text))
    assert main(["validate", str(routing)]) == 1
    prefix = f"{routing / 'rules.yaml'}:"
    return [line.removeprefix(prefix) for line in capsys.readouterr().out.splitlines()]


def test_every_problem_is_located(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    problems = _problems(
        tmp_path,
        capsys,
        """\
        routing: bad
        triage: nobody
        teams:
          billing:
            webhook: ftp://x
            email: not-an-address
        rules:
          - id: refunds
            team: billing
            keywords:
              en: [refund, "!!"]
          - id: refunds
            team: biling
            when: item.text.contains("x") && customer.vip
          - id: everything
            team: billing
          - id: syntax
            team: billing
            when: "item.text ==="
        """,
    )
    assert problems == [
        "2:9: triage team 'nobody' is not in `teams`: add it there",
        "5:14: team 'billing': webhook 'ftp://x' is not an http(s) URL: write https://host/path",
        "6:12: team 'billing': email 'not-an-address' is not an address: write name@domain",
        "11:20: rule 'refunds': keyword '!!' has no letters or digits: it could never match; "
        "remove it",
        "12:9: duplicate rule id 'refunds' (first used by rule #1): give each rule its own id",
        "13:11: rule 'refunds': unknown team 'biling': use one of billing",
        "14:38: rule 'refunds': when: unknown variable customer in 'item.text.contains(\"x\") "
        "&& customer.vip': conditions can use only item and profile (e.g. item.source == "
        '"app.review" && item.properties.rating <= 2, profile.tier)',
        "15:5: rule 'everything' has neither `when` nor `keywords`: it would match everything; "
        "give it one (unmatched items already go to triage)",
        "19:24: rule 'syntax': when: CEL syntax error in 'item.text ===' at column 13: Syntax "
        "error: token recognition error at: '='",
    ]


def test_shape_problems_name_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    problems = _problems(
        tmp_path,
        capsys,
        """\
        routing: bad
        triage: triage
        teams: {triage: {}, Billing: {}}
        rules:
          - id: a
            team: triage
            keywords: {english: [x]}
            colour: red
        """,
    )
    assert problems == [
        "3:30: team name 'Billing': use lower-case letters, digits, - and _ (it names the "
        "team's topic), starting with a letter",
        "7:25: rules.0.keywords: 'english' is not a language: use a two- or three-letter "
        "code (en, fr, de) or `any`",
        "8:13: rules.0: unknown field 'colour': remove it or check its spelling",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "",
            "1:1: the file is empty, not routing rules: write a YAML mapping with routing, "
            "triage, teams and rules",
        ),
        ("routing: [", "1:11: YAML syntax error"),
        (
            "routing: x\ntriage: t\nteams: {t: {}}\nrules: []\n",
            "4:8: rules: List should have at least 1 item after validation, not 0",
        ),
    ],
)
def test_file_level_problems(text: str, expected: str) -> None:
    with pytest.raises(JourneyValidationError) as caught:
        compile_routing("r.yaml", text)
    assert str(caught.value.problems[0]).startswith(f"r.yaml:{expected}")


def test_the_library_rules_are_valid_and_route_as_documented(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["validate", str(LIBRARY_RULES.parent)]) == 0
    assert "1 rules files valid" in capsys.readouterr().err
    table = read_routing(LIBRARY_RULES)
    assert set(table.teams) == {"billing", "delivery", "product", "support", "hr", "triage"}
    cases = {
        "I was charged twice for one order": "billing",
        "Mon colis est arrivé abîmé": "delivery",
        "The app logs me out on Android": "product",
        "Thank you!": "triage",
    }
    for text, team in cases.items():
        assert table.route(FeedbackText(text, "survey.answered", "c")).team == team, text
    staff = FeedbackText("My payslip is wrong", "survey.answered", "e", journey="staff-leaving")
    assert table.route(staff).team == "hr"
    # The staff library's own survey answers: an employee's comment is HR's.
    samples = LIBRARY_RULES.parent.parent / "staff" / "samples" / "staff-i-have-a-problem.jsonl"
    comments = [
        item
        for line in samples.read_text().splitlines()
        if (item := feedback_of(EventRecord(**jsonwire.loads(line)))) is not None
    ]
    assert comments and {table.route(item).team for item in comments} == {"hr"}


def _event(name: str, **properties: object) -> EventRecord:
    return EventRecord(
        event_id="e-1",
        customer_id="c-1",
        name=name,
        occurred_at="2026-05-01T09:30:00Z",
        channel="sms",
        properties=dict(properties),
    )


def test_which_events_carry_feedback() -> None:
    comment = feedback_of(_event("survey.answered", comment=" Refund please ", score=3))
    assert comment is not None and comment.text == "Refund please"
    assert comment.properties == {"score": 3}
    review = feedback_of(_event("app.review", title="Slow", text="it lags", rating=2))
    assert review is not None and review.text == "Slow: it lags"
    assert feedback_of(_event("message.replied", text="STOP")) is None  # an opt-out keyword
    assert feedback_of(_event("message.replied", text="9")) is None  # a score by text
    assert feedback_of(_event("survey.answered", score=9)) is None  # no comment
    assert feedback_of(_event("order.placed", text="refund")) is None  # not a source
    reply = feedback_of(_event("message.replied", text="où est mon colis", locale="fr"))
    assert reply is not None and reply.locale == "fr" and reply.channel == "sms"
    profiled = feedback_of(_event("support.note", text="x"), {"locale": "de", "tier": "vip"})
    assert profiled is not None and profiled.locale == "de"


def test_records_and_notifications_are_deterministic() -> None:
    table = compile_routing("rules.yaml", RULES)
    event = _event("survey.answered", comment="refund please", locale="en")
    item = feedback_of(event)
    assert item is not None
    route = table.route(item)
    record = routed_record(event, item, route, table, "https://api.example/")
    again = routed_record(event, item, route, table, "https://api.example/")
    assert record.to_json() == again.to_json()
    assert record.item_id == item_id_of("c-1", "e-1")
    assert record.timeline_url == "https://api.example/v1/audit/records?customer=c-1&order=newest"
    assert (record.team, record.theme, record.rerouted) == ("billing", "refunds:refund", False)
    rerouted = routed_record(event, item, route, table, "https://api.example", rerouted=True)
    assert rerouted.item_id != record.item_id and rerouted.original_item_id == record.item_id
    messages = notifications(record, table)
    assert [(m.channel, m.to, m.message_id) for m in messages] == [
        ("webhook", None, f"{record.item_id}:webhook"),
        ("email", "billing@example.com", f"{record.item_id}:email"),
    ]
    assert messages[0].content == {
        "url": "https://hooks.example/billing",
        "payload": record.to_dict(),
    }
    assert (
        "timeline: https://api.example/v1/audit/records?customer=c-1&order=newest"
        in messages[1].content["body"]
    )


def test_route_dry_run_shows_each_line_and_skips_what_is_not_feedback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = tmp_path / "feedback.jsonl"
    lines.write_text(
        '{"text": "Remboursement svp", "locale": "fr"}\n'
        "not json\n"
        '{"event_id": "e", "customer_id": "c", "name": "order.placed", '
        '"occurred_at": "2026-05-01T09:30:00Z"}\n'
        '{"text": "merci", "locale": "fr"}\n'
    )
    code = main(["feedback", "route", "--rules", str(LIBRARY_RULES), "--dry-run", str(lines)])
    out, err = capsys.readouterr()
    assert code == 0
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert [[cell.strip() for cell in row.split("│")[1:5]] for row in rows] == [
        ["1", "billing", "refunds", "remboursement"],
        ["4", "triage", "-", "-"],
    ]
    assert f"{lines}:2: skipped: not JSON" in err
    assert f"{lines}:3: skipped: event 'order.placed' carries no feedback" in err


def test_feedback_commands_report_bad_rules_and_an_unreachable_kafka_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("routing: x\n")
    assert main(["feedback", "route", "--rules", str(bad), "--dry-run", str(bad)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{bad}:1:1: missing field 'triage': add it",
        f"{bad}:1:1: missing field 'teams': add it",
        f"{bad}:1:1: missing field 'rules': add it",
    ]
    monkeypatch.setenv("ORCHESTRATOR_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    since, until = "2026-05-01T00:00:00Z", "2026-05-02T00:00:00Z"
    argv = ["feedback", "reroute", "--rules", str(LIBRARY_RULES), "--from", since]
    assert main([*argv, "--until", until]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("Kafka at 127.0.0.1:1 is not reachable")
    assert main([*argv, "--until", since]) == 2
    assert capsys.readouterr().err.strip() == "--until must be after --from"


_WORDS = st.text(alphabet="aeiouéèçñüßrstnl", min_size=1, max_size=8)


@given(
    before=st.lists(_WORDS, max_size=4),
    phrase=st.lists(_WORDS, min_size=1, max_size=3),
    after=st.lists(_WORDS, max_size=4),
)
def test_a_phrase_matches_whatever_the_case_accents_and_punctuation(
    before: list[str], phrase: list[str], after: list[str]
) -> None:
    keyword = " ".join(phrase)
    text = ", ".join([*before, "  ".join(phrase).upper() + "!", *after])
    assert contains(words_of(text), phrase_of(keyword))
    # Never as part of a longer word ("z" is not in the alphabet).
    longer = " ".join([phrase[0] + "z", *phrase[1:]])
    assert not contains(words_of(longer), phrase_of(keyword))
