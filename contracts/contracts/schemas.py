"""Generate the checked-in JSON Schemas of every event and check them.

python -m contracts.schemas write   # regenerate; refuses a breaking change
python -m contracts.schemas check   # exit 1 when a model and its schema disagree
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from contracts.compat import Schema, breaking_changes
from contracts.envelope import Event
from contracts.topics import ALL_TOPICS

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"


def schema_path(topic_name: str, event: type[Event]) -> Path:
    return SCHEMA_DIR / topic_name / f"{event.event_type}.v{event.event_version}.json"


def generated() -> dict[Path, Schema]:
    """The schema each event model produces now, by the file it belongs in."""
    return {schema_path(topic.name, event): event.model_json_schema() for topic in ALL_TOPICS for event in topic.events}


def render(schema: Schema) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def problems() -> list[str]:
    """Drift and breaking changes between the models and the checked-in schemas."""
    found: list[str] = []
    expected = generated()
    for path, schema in expected.items():
        name = path.relative_to(SCHEMA_DIR)
        if not path.exists():
            found.append(f"{name}: no checked-in schema; run `make schemas` and commit it")
            continue
        checked_in = json.loads(path.read_text())
        for change in breaking_changes(checked_in, schema):
            found.append(f"{name}: breaking change {change}; add a new event or topic version instead")
        if render(schema) != path.read_text():
            found.append(f"{name}: differs from its model; run `make schemas` and commit it")
    for path in SCHEMA_DIR.rglob("*.json"):
        if path not in expected:
            found.append(f"{path.relative_to(SCHEMA_DIR)}: no model produces it; a published schema is never deleted")
    return found


def write() -> list[str]:
    refused: list[str] = []
    for path, schema in generated().items():
        if path.exists():
            changes = breaking_changes(json.loads(path.read_text()), schema)
            if changes:
                refused.extend(f"{path.relative_to(SCHEMA_DIR)}: {change}" for change in changes)
                continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(schema))
    return refused


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "check"
    if command == "write":
        refused = write()
        for line in refused:
            print(f"refused, not backward compatible: {line}", file=sys.stderr)
        if refused:
            print("A breaking change needs a new event version or topic version (DESIGN.md, Events).", file=sys.stderr)
        return 1 if refused else 0
    if command == "check":
        found = problems()
        for line in found:
            print(line, file=sys.stderr)
        return 1 if found else 0
    print(f"usage: python -m contracts.schemas [write|check], not {command!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
