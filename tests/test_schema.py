"""`journeys/journey.schema.json`: committed, up to date, and describing the language.

jsonschema is not a dependency, so `conforms` below checks the subset of JSON Schema that
pydantic generates for the journey models (enough to tell a valid journey from broken ones).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.cli import main
from orchestrator.journey.library import journey_schema
from orchestrator.journey.model import CHANNELS, STEP_KINDS
from tests.journey_fixtures import FIXTURES

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "journeys" / "journey.schema.json"
SCHEMA: dict[str, Any] = json.loads(journey_schema())
CART = yaml.safe_load((FIXTURES / "cart" / "cart.yaml").read_text())

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def conforms(value: Any, schema: dict[str, Any], root: dict[str, Any] = SCHEMA) -> bool:
    """Does `value` satisfy `schema` (the keywords pydantic emits)?"""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        return conforms(value, root["$defs"][name], root)
    if "anyOf" in schema and not any(conforms(value, s, root) for s in schema["anyOf"]):
        return False
    if "oneOf" in schema and sum(conforms(value, s, root) for s in schema["oneOf"]) != 1:
        return False
    if "type" in schema:
        expected = _TYPES[schema["type"]]
        if not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected):
            return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return False
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", 1e9):
            return False
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and not schema.get("minimum", -1e18) <= value <= schema.get("maximum", 1e18):
        return False
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            return False
        if "items" in schema and not all(conforms(v, schema["items"], root) for v in value):
            return False
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        if not set(schema.get("required", ())) <= set(value):
            return False
        if schema.get("additionalProperties") is False and not set(value) <= set(properties):
            return False
        if len(value) > schema.get("maxProperties", 1e9):
            return False
        if not all(conforms(v, properties[k], root) for k, v in value.items() if k in properties):
            return False
    return True


def test_committed_schema_is_up_to_date() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == journey_schema(), (
        "journeys/journey.schema.json is stale: run "
        "`orchestrator schema --output journeys/journey.schema.json` and commit it"
    )


def test_schema_command_writes_the_same_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "schema.json"
    assert main(["schema", "--output", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == journey_schema()
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == journey_schema()


def test_schema_describes_every_step_kind_and_channel() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(SCHEMA["required"]) == {"id", "name", "trigger", "steps"}
    assert SCHEMA["additionalProperties"] is False
    step_refs = [s["$ref"] for s in SCHEMA["properties"]["steps"]["items"]["oneOf"]]
    step_defs = [SCHEMA["$defs"][ref.removeprefix("#/$defs/")] for ref in step_refs]
    kinds = [next(k for k in STEP_KINDS if k in d["required"]) for d in step_defs]
    assert kinds == list(STEP_KINDS)
    for definition in step_defs:
        assert "id" in definition["required"]
        assert definition["additionalProperties"] is False
        assert definition["description"]  # editors show it on hover
    assert SCHEMA["$defs"]["SendSpec"]["properties"]["channel"]["enum"] == list(CHANNELS)
    assert SCHEMA["properties"]["category"]["enum"] == ["marketing", "transactional"]


def test_the_example_journey_conforms() -> None:
    assert conforms(CART, SCHEMA)
    kinds = {next(k for k in STEP_KINDS if k in step) for step in CART["steps"]}
    assert kinds == set(STEP_KINDS)  # the example uses every step kind


@pytest.mark.parametrize("path", sorted((ROOT / "journeys").glob("*.yaml")), ids=lambda p: p.name)
def test_library_journeys_conform(path: Path) -> None:
    assert conforms(yaml.safe_load(path.read_text(encoding="utf-8")), SCHEMA)


def broken(change: str) -> dict[str, Any]:
    journey: dict[str, Any] = json.loads(json.dumps(CART))
    steps = journey["steps"]
    if change == "unknown-field":
        journey["colour"] = "red"
    elif change == "missing-trigger":
        del journey["trigger"]
    elif change == "two-kinds":
        steps[0]["send"] = steps[1]["send"]
    elif change == "no-kind":
        del steps[0]["wait"]
    elif change == "unknown-channel":
        steps[1]["send"]["channel"] = "fax"
    elif change == "bad-duration":
        steps[0]["wait"] = "an hour"
    elif change == "bad-window":
        journey["send_window"]["start"] = "8am"
    elif change == "bad-reentry":
        journey["reentry"] = "sometimes"
    elif change == "weight-over-100":
        steps[4]["split"][0]["weight"] = 150
    elif change == "exit-with-fields":
        steps[-1]["exit"] = {"reason": "x"}
    elif change == "bad-step-id":
        steps[0]["id"] = "Pause Here"
    return journey


@pytest.mark.parametrize(
    "change",
    [
        "unknown-field",
        "missing-trigger",
        "two-kinds",
        "no-kind",
        "unknown-channel",
        "bad-duration",
        "bad-window",
        "bad-reentry",
        "weight-over-100",
        "exit-with-fields",
        "bad-step-id",
    ],
)
def test_the_schema_rejects_a_broken_journey(change: str) -> None:
    assert not conforms(broken(change), SCHEMA)
