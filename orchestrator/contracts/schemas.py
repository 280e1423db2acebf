"""Each topic's record contract by topic name: validated reading and the JSON Schemas
committed under `docs/schemas/` (`orchestrator schema --contracts docs/schemas`)."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from orchestrator import jsonwire
from orchestrator.contracts.base import ContractError, encode, validate
from orchestrator.contracts.deadletters import DEADLETTER_RECORD
from orchestrator.contracts.deploys import DEPLOY_RECORD
from orchestrator.contracts.events import EVENT_RECORD
from orchestrator.contracts.feedback import FEEDBACK_RECORD
from orchestrator.contracts.interactions import INTERACTION_RECORD
from orchestrator.contracts.outbound import OUTBOUND_MESSAGE

__all__ = ["TOPIC_CONTRACTS", "contract_schemas", "read_record", "rewrite_record"]

# Topic names without the deployment's prefix (`TopicNames`).
TOPIC_CONTRACTS: dict[str, TypeAdapter[Any]] = {
    "events": EVENT_RECORD,
    "outbound": OUTBOUND_MESSAGE,
    "interactions": INTERACTION_RECORD,
    "deadletter": DEADLETTER_RECORD,
    "journeys": DEPLOY_RECORD,
    # Every `feedback.<team>` topic holds this record.
    "feedback": FEEDBACK_RECORD,
}

_TITLES = {
    "events": "A record of the `events` topic: a customer event",
    "outbound": "A record of the `outbound` topic: a message for connectors",
    "interactions": "A record of the `interactions` topic: one interaction, told apart by `type`",
    "deadletter": "A record of the `deadletter` topic: what could not be applied, and why",
    "journeys": "A record of the compacted `journeys` topic: a journey's deploy record",
    "feedback": "A record of a `feedback.<team>` topic: one piece of feedback routed to a team",
}


def read_record(topic: str, value: bytes) -> Any:
    """The record a value of `topic` (unprefixed name) holds; `ContractError` if it is not one."""
    try:
        data = jsonwire.loads(value)
    except jsonwire.JSONDecodeError as exc:
        raise ContractError(f"not a valid {topic} record: not JSON ({exc})") from exc
    return validate(TOPIC_CONTRACTS[topic], data, f"{topic} record")


def rewrite_record(topic: str, data: Any) -> bytes:
    """A decoded record of `topic`, validated and written as the current version writes it
    (for records kept before they had a version, e.g. in an outbox left by a crash)."""
    return encode(validate(TOPIC_CONTRACTS[topic], data, f"{topic} record"))


def contract_schemas() -> dict[str, str]:
    """`<topic>.schema.json` file name -> the JSON Schema text of that topic's records."""
    files: dict[str, str] = {}
    for topic, adapter in TOPIC_CONTRACTS.items():
        schema = adapter.json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["title"] = _TITLES[topic]
        files[f"{topic}.schema.json"] = jsonwire.dumps_pretty(schema) + "\n"
    return files
