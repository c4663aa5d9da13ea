"""Backward compatibility of JSON Schemas: a contract change must be additive.

A new schema is compatible with an old one when every message valid under the old
schema stays valid under the new one and keeps its meaning: no property removed or
retyped, no new required property, no constraint narrowed, no constant changed.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

_NARROWING_LOWER = ("minLength", "minimum", "exclusiveMinimum", "minItems")
_NARROWING_UPPER = ("maxLength", "maximum", "exclusiveMaximum", "maxItems")


def breaking_changes(old: Schema, new: Schema) -> list[str]:
    """Every way `new` breaks readers or writers of `old`, one line each; empty when compatible."""
    problems: list[str] = []
    _compare(old, new, old, new, "$", problems)
    return problems


def _resolve(node: Schema, root: Schema) -> Schema:
    while "$ref" in node:
        ref: str = node["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local $ref are supported, got {ref}")
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _types(node: Schema) -> set[str]:
    declared = node.get("type")
    if declared is None:
        return set()
    return {declared} if isinstance(declared, str) else set(declared)


def _compare(old: Schema, new: Schema, old_root: Schema, new_root: Schema, path: str, out: list[str]) -> None:
    old = _resolve(old, old_root)
    new = _resolve(new, new_root)

    if _types(old) != _types(new):
        out.append(f"{path}: type changed from {sorted(_types(old))} to {sorted(_types(new))}")
        return
    if "const" in old and old.get("const") != new.get("const"):
        out.append(f"{path}: constant changed from {old['const']!r} to {new.get('const')!r}")
    if "enum" in old:
        removed = [v for v in old["enum"] if v not in new.get("enum", [])]
        if removed:
            out.append(f"{path}: enum values removed: {removed}")
    if old.get("pattern") != new.get("pattern") and "pattern" in new:
        out.append(f"{path}: pattern changed from {old.get('pattern')!r} to {new['pattern']!r}")
    if old.get("format") != new.get("format") and "format" in new:
        out.append(f"{path}: format changed from {old.get('format')!r} to {new['format']!r}")
    for key in _NARROWING_LOWER:
        if key in new and new[key] > old.get(key, float("-inf")):
            out.append(f"{path}: {key} raised from {old.get(key)} to {new[key]}")
    for key in _NARROWING_UPPER:
        if key in new and new[key] < old.get(key, float("inf")):
            out.append(f"{path}: {key} lowered from {old.get(key)} to {new[key]}")

    old_props: Schema = old.get("properties", {})
    new_props: Schema = new.get("properties", {})
    for name, old_prop in old_props.items():
        if name not in new_props:
            out.append(f"{path}.{name}: property removed")
        else:
            _compare(old_prop, new_props[name], old_root, new_root, f"{path}.{name}", out)
    added_required = set(new.get("required", [])) - set(old.get("required", []))
    for name in sorted(added_required):
        out.append(f"{path}.{name}: property became required")

    if "items" in old and "items" in new:
        _compare(old["items"], new["items"], old_root, new_root, f"{path}[]", out)

    for combinator in ("anyOf", "oneOf", "allOf"):
        old_options: list[Schema] = old.get(combinator, [])
        new_options: list[Schema] = new.get(combinator, [])
        if not old_options:
            continue
        if len(new_options) < len(old_options):
            out.append(f"{path}: {combinator} lost options ({len(old_options)} -> {len(new_options)})")
            continue
        for index, (old_option, new_option) in enumerate(zip(old_options, new_options, strict=False)):
            _compare(old_option, new_option, old_root, new_root, f"{path}<{combinator}[{index}]>", out)
