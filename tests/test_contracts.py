"""Topic record contracts: committed schemas up to date, versions, and unchanged shapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator import jsonwire
from orchestrator.cli import main
from orchestrator.contracts.base import ContractError
from orchestrator.contracts.codec import DeadLetter, decode_event
from orchestrator.contracts.interactions import (
    INTERACTION_RECORD,
    DataAccessInteraction,
    ErasureInteraction,
    InteractionKind,
    InteractionRecord,
    KeyAction,
    KeyInteraction,
    ProviderInteraction,
    ProviderOutcome,
    SendInteraction,
)
from orchestrator.contracts.outbound import OutboundMessage
from orchestrator.contracts.recording import (
    LoggedAction,
    action_interaction,
    inbound_interaction,
    undelivered_interaction,
)
from orchestrator.contracts.schemas import TOPIC_CONTRACTS, contract_schemas, read_record
from orchestrator.engine.actions import (
    ConditionFailed,
    Entered,
    Exited,
    LateEvent,
    ProfileChanged,
    Sent,
    StepEntered,
    Suppressed,
)
from orchestrator.engine.events import Event, EventIn
from orchestrator.runtime.effects import Outbox

SCHEMAS = Path(__file__).resolve().parent.parent / "docs" / "schemas"
AT = 1_790_000_000.0

SENT = Sent(
    at=AT,
    customer_id="c1",
    journey="welcome",
    version=2,
    instance_id="welcome:1",
    step="hello",
    channel="email",
    template="hello",
    variant=None,
    content={"subject": "Hi", "body": "Hello"},
    to="c1@example.com",
    message_id="m1",
    category="marketing",
    consent="not_set",
)
SURVEY_SENT = Sent(
    **{
        **{f: getattr(SENT, f) for f in SENT.__slots__},
        "variant": "B",
        "consent": "opted_in",
        "survey": "nps",
    }
)
ACTIONS: list[LoggedAction] = [
    Entered(AT, "c1", "welcome", 2, "welcome:1"),
    StepEntered(AT, "c1", "welcome", 2, "welcome:1", "hello"),
    StepEntered(AT, "c1", "welcome", 2, "welcome:1", "ab", "control", None),
    StepEntered(AT, "c1", "welcome", 2, "welcome:1", "ab", "holdout", True),
    SENT,
    SURVEY_SENT,
    Suppressed(AT, "c1", "welcome", "welcome:1", "hello", "sms", "no_consent"),
    Exited(AT, "c1", "welcome", "welcome:1", "goal"),
    LateEvent(AT, "c1", "e0", AT - 12.3456),
    ProfileChanged(AT, "c1", "welcome", "tag", {"tier": "gold"}),
    ConditionFailed(AT, "c1", "welcome", None, "profile.x > 1", "no such key: x"),
]
EVENT = Event("e1", "c1", "signup", AT, None, {"plan": "pro"})
SENT_JSON = OutboundMessage.of(SENT, "e1").to_json()


@pytest.mark.parametrize("name", sorted(contract_schemas()))
def test_committed_schemas_are_up_to_date(name: str) -> None:
    committed = (SCHEMAS / name).read_text(encoding="utf-8")
    assert committed == contract_schemas()[name], (
        f"docs/schemas/{name} is stale: run `orchestrator schema --contracts docs/schemas`"
    )


def test_every_topic_has_a_committed_schema_and_no_other_is_there() -> None:
    assert sorted(p.name for p in SCHEMAS.glob("*.json")) == sorted(
        f"{topic}.schema.json" for topic in TOPIC_CONTRACTS
    )


def test_schema_command_writes_the_committed_files(tmp_path: Path) -> None:
    assert main(["schema", "--contracts", str(tmp_path / "out")]) == 0
    for name, text in contract_schemas().items():
        assert (tmp_path / "out" / name).read_text(encoding="utf-8") == text


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: type(a).__name__)
def test_an_interaction_record_is_simulates_record_plus_ids(action: LoggedAction) -> None:
    """The log and `simulate` agree on every action: the log only adds ids and a version."""
    record = jsonwire.loads(action_interaction(action, "e1", 3).to_json())
    # simulate prints neither the consent nor the survey of a send (its output is pinned)
    extra = {"schema_version", "record_id", "caused_by", "message_id", "version", "instance_id"}
    extra |= {"category", "consent", "survey"}
    assert {k: v for k, v in record.items() if k not in extra} == {
        k: v for k, v in action.to_record().items() if k != "version"
    }
    assert (record["schema_version"], record["record_id"], record["caused_by"]) == (1, "e1:3", "e1")
    if hasattr(action, "instance_id"):
        assert record["instance_id"] == action.instance_id
    if isinstance(action, Sent | Entered | StepEntered):
        assert record["version"] == action.version
    if isinstance(action, Sent):
        assert (record["category"], record["consent"]) == (action.category, action.consent)
        assert record.get("survey") == action.survey


def test_step_and_send_records_have_the_contract_shape() -> None:
    """The shapes other consumers (audit store, reports) read, field for field."""
    step = jsonwire.loads(action_interaction(ACTIONS[3], "e1", 1).to_json())
    assert step == {
        "schema_version": 1,
        "record_id": "e1:1",
        "type": "step",
        "at": "2026-09-21T14:13:20Z",
        "customer_id": "c1",
        "journey": "welcome",
        "version": 2,
        "step": "ab",
        "instance_id": "welcome:1",
        "caused_by": "e1",
        "variant": "holdout",
        "holdout": True,
    }
    plain = jsonwire.loads(action_interaction(ACTIONS[1], "e1", 1).to_json())
    assert "variant" not in plain and "holdout" not in plain
    send = jsonwire.loads(action_interaction(SURVEY_SENT, "e1", 2).to_json())
    assert send == {
        "schema_version": 1,
        "record_id": "e1:2",
        "type": "send",
        "at": "2026-09-21T14:13:20Z",
        "customer_id": "c1",
        "journey": "welcome",
        "step": "hello",
        "channel": "email",
        "template": "hello",
        "variant": "B",
        "category": "marketing",
        "consent": "opted_in",
        "survey": "nps",
        "content": {"subject": "Hi", "body": "Hello"},
        "message_id": "m1",
        "version": 2,
        "instance_id": "welcome:1",
        "caused_by": "e1",
    }
    assert "survey" not in jsonwire.loads(action_interaction(SENT, "e1", 2).to_json())
    message = jsonwire.loads(OutboundMessage.of(SURVEY_SENT, "e1").to_json())
    assert message["survey"] == "nps"


def test_records_read_back_as_the_record_of_their_kind() -> None:
    records: list[InteractionRecord] = [
        action_interaction(a, "e1", i) for i, a in enumerate(ACTIONS)
    ]
    records.append(inbound_interaction(EVENT, AT - 5, AT))
    records.append(undelivered_interaction(OutboundMessage.of(SENT, "e1"), "too large", AT))
    records.append(
        DataAccessInteraction(
            record_id="access:1",
            at="2026-09-21T14:13:20Z",
            customer_id="c1",
            operator="ann",
            fields=["profile", "consent"],
        )
    )
    # Key changes are `operator` records too, told from journey actions by their action.
    records.append(
        KeyInteraction(
            record_id="op:1",
            action=KeyAction.CREATE,
            at="2026-09-21T14:13:20Z",
            operator="admin",
            key_id="k1",
            key_name="shop",
            role="publisher",
        )
    )
    records.append(
        ProviderInteraction(
            record_id="provider:m1:1",
            at="2026-09-21T14:13:20Z",
            customer_id="c1",
            journey="welcome",
            step="hello",
            instance_id="welcome:1",
            channel="sms",
            message_id="m1",
            provider="twilio",
            attempt=1,
            outcome=ProviderOutcome.RETRY,
            error_code="500",
            error="server error",
        )
    )
    records.append(
        ErasureInteraction(
            record_id="erase:1", at="2026-09-21T14:13:20Z", customer_id="c1", operator="dpo"
        )
    )
    for record in records:
        assert read_record("interactions", record.to_json()) == record
    kinds = {r.type for r in records}
    assert kinds == set(InteractionKind)


def test_shapes_are_the_ones_before_types_plus_the_version() -> None:
    message = jsonwire.loads(OutboundMessage.of(SENT, "e1").to_json())
    assert message == {
        "schema_version": 1,
        "message_id": "m1",
        "at": "2026-09-21T14:13:20Z",
        "customer_id": "c1",
        "journey": "welcome",
        "version": 2,
        "instance_id": "welcome:1",
        "step": "hello",
        "channel": "email",
        "to": "c1@example.com",
        "template": "hello",
        "variant": None,
        "category": "marketing",
        "content": {"subject": "Hi", "body": "Hello"},
        "caused_by": "e1",
    }
    assert jsonwire.loads(inbound_interaction(EVENT, AT - 5, AT).to_json()) == {
        "schema_version": 1,
        "record_id": "in:e1",
        "type": "inbound",
        "at": "2026-09-21T14:13:15Z",
        "received_at": "2026-09-21T14:13:20Z",
        "customer_id": "c1",
        "event": {**EVENT.to_wire(), "schema_version": 1},
    }
    undelivered = undelivered_interaction(OutboundMessage.of(SENT, "e1"), "x" * 10_000, AT)
    assert jsonwire.loads(undelivered.to_json()) == {
        "schema_version": 1,
        "record_id": "undelivered:m1",
        "type": "error",
        "at": "2026-09-21T14:13:20Z",
        "customer_id": "c1",
        "journey": "welcome",
        "step": "hello",
        "instance_id": "welcome:1",
        "channel": "email",
        "message_id": "m1",
        "caused_by": "e1",
        "expression": None,
        "error": "x" * 4096,
    }


def test_records_written_before_versions_read_as_version_1() -> None:
    old = EVENT.to_wire()
    assert "schema_version" not in old
    assert decode_event(jsonwire.dumps(old), b"c1", "events", 0, 0) == EVENT
    record = jsonwire.loads(action_interaction(SENT, "e1", 0).to_json())
    del record["schema_version"]
    assert INTERACTION_RECORD.validate_python(record) == action_interaction(SENT, "e1", 0)


def test_a_newer_version_is_refused_saying_to_upgrade() -> None:
    newer = jsonwire.dumps({**EVENT.to_wire(), "schema_version": 2})
    letter = decode_event(newer, b"c1", "events", 0, 7)
    assert isinstance(letter, DeadLetter)
    assert "schema_version 2 is newer than this program reads" in letter.reason
    assert "upgrade" in letter.reason
    with pytest.raises(ContractError, match="upgrade"):
        read_record("outbound", jsonwire.dumps({**jsonwire.loads(SENT_JSON), "schema_version": 9}))


def test_an_outbox_left_by_the_code_before_versions_is_produced_as_current_records() -> None:
    """A crash before this change leaves outboxes of untyped records: they still load."""
    inbound = jsonwire.loads(inbound_interaction(EVENT, AT, AT).to_json())
    message = jsonwire.loads(SENT_JSON)
    for old in (inbound, inbound["event"], message):
        del old["schema_version"]
    # nor `received_at`: `at` was when the worker applied the event
    del inbound["received_at"]
    raw = jsonwire.dumps(
        {
            "timers": "t",
            "records": [["interactions", "c1", inbound], ["outbound", "c1", message]],
            "zadd": [],
            "zrem": [],
            "membership": [],
            "stats": [],
        }
    )
    outbox = Outbox.from_wire(raw)
    assert [(k, key, jsonwire.loads(v)) for k, key, v in outbox.records] == [
        ("interactions", "c1", jsonwire.loads(inbound_interaction(EVENT, AT, AT).to_json())),
        ("outbound", "c1", jsonwire.loads(SENT_JSON)),
    ]
    assert Outbox.from_wire(outbox.to_wire()) == outbox


def test_event_record_and_the_engines_event_model_apply_the_same_rules() -> None:
    """`simulate` reads events with the engine's `EventIn`, workers with `EventRecord`."""

    def rules(schema: dict[str, Any]) -> dict[str, Any]:
        return {
            name: {k: v for k, v in field.items() if k != "title"}
            for name, field in schema["properties"].items()
            if name != "schema_version"
        }

    ours = jsonwire.loads(contract_schemas()["events.schema.json"])
    assert rules(ours) == rules(EventIn.model_json_schema())
    assert set(ours["required"]) == set(EventIn.model_json_schema()["required"])


def test_a_send_record_written_before_consent_was_recorded_still_reads() -> None:
    """Records already on `interactions` (or in an outbox) when workers were upgraded lack
    `category` and `consent`: they read back as unknown, not refused, and not guessed."""
    old = {
        "schema_version": 1,
        "record_id": "send:old",
        "type": "send",
        "at": "2026-06-01T09:00:00Z",
        "customer_id": "c-1",
        "journey": "j",
        "step": "s",
        "channel": "email",
        "template": "t",
        "content": {"subject": "hi", "body": "hello"},
        "message_id": "m-1",
        "version": 1,
        "instance_id": "i-1",
        "caused_by": "e-1",
    }
    record = INTERACTION_RECORD.validate_python(old)
    assert isinstance(record, SendInteraction)
    assert (record.category, record.consent) == (None, None)
    assert "consent" not in record.to_dict()
