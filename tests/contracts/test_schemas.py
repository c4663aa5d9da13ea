"""The checked-in schemas follow the models, and a contract change must stay additive."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from contracts import schemas
from contracts.compat import breaking_changes
from contracts.topics import ALL_TOPICS

OBJECT = {
    "type": "object",
    "properties": {
        "amount": {"type": "integer", "exclusiveMinimum": 0},
        "currency": {"type": "string", "enum": ["CNY", "USD"]},
        "note": {"anyOf": [{"type": "string", "maxLength": 50}, {"type": "null"}]},
    },
    "required": ["amount", "currency"],
}


def changed(**edits: object) -> dict[str, object]:
    new = json.loads(json.dumps(OBJECT))
    for path, value in edits.items():
        *parents, leaf = path.split("__")
        node = new
        for part in parents:
            node = node[part]
        if value is None:
            del node[leaf]
        else:
            node[leaf] = value
    return new


def test_checked_in_schemas_match_the_models():
    assert schemas.problems() == []


def test_every_event_of_every_topic_has_a_schema_file():
    files = {p.relative_to(schemas.SCHEMA_DIR).as_posix() for p in schemas.SCHEMA_DIR.rglob("*.json")}
    expected = {f"{t.name}/{e.event_type}.v{e.event_version}.json" for t in ALL_TOPICS for e in t.events}
    assert files == expected


def test_adding_an_optional_property_is_compatible():
    assert breaking_changes(OBJECT, changed(properties__channel={"type": "string"})) == []


def test_adding_an_enum_value_is_compatible():
    assert breaking_changes(OBJECT, changed(properties__currency__enum=["CNY", "USD", "EUR"])) == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ({"properties__note": None}, "$.note: property removed"),
        ({"required": ["amount", "currency", "note"]}, "$.note: property became required"),
        ({"properties__amount__type": "string"}, "$.amount: type changed"),
        ({"properties__amount__maximum": 100}, "$.amount: maximum lowered"),
        ({"properties__currency__enum": ["CNY"]}, "$.currency: enum values removed: ['USD']"),
        ({"properties__note__anyOf": [{"type": "string", "maxLength": 20}, {"type": "null"}]}, "maxLength lowered"),
    ],
)
def test_breaking_changes_are_named(edit: dict[str, object], expected: str):
    found = breaking_changes(OBJECT, changed(**edit))
    assert any(expected in line for line in found), found


@pytest.fixture
def schema_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "schemas"
    shutil.copytree(schemas.SCHEMA_DIR, copy)
    monkeypatch.setattr(schemas, "SCHEMA_DIR", copy)
    return copy


def test_a_model_change_without_its_schema_fails_the_check(schema_copy: Path):
    path = schema_copy / "loyalty.partner-purchases.v1" / "PartnerPurchaseRecorded.v1.json"
    checked_in = json.loads(path.read_text())
    # As if the model gained an optional field that nobody wrote into the checked-in schema.
    checked_in["properties"].pop("causation_id")
    path.write_text(json.dumps(checked_in))

    found = schemas.problems()

    assert any("PartnerPurchaseRecorded.v1.json: differs from its model" in line for line in found), found


def test_a_breaking_model_change_fails_the_check_and_write_refuses_it(schema_copy: Path):
    path = schema_copy / "loyalty.card-transactions.v1" / "CardPurchasePosted.v1.json"
    checked_in = json.loads(path.read_text())
    # As if the model dropped a field that the published schema has.
    checked_in["$defs"]["CardPurchasePayload"]["properties"]["terminal_id"] = {"type": "string"}
    path.write_text(json.dumps(checked_in))

    assert any("breaking change $.payload.terminal_id: property removed" in line for line in schemas.problems())
    assert schemas.write() != []
    assert "terminal_id" in path.read_text(), "write must not overwrite a published schema with a breaking one"


def test_a_deleted_published_schema_is_reported(schema_copy: Path):
    (schema_copy / "loyalty.ledger-events.v1" / "PointsDebited.v1.json").unlink()
    assert any("PointsDebited.v1.json: no checked-in schema" in line for line in schemas.problems())
