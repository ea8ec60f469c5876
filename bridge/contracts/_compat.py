"""A small JSON Schema diff that finds the changes which break consumers.

Events live long (queues, archives, replays) and producers and consumers deploy
separately, so a contract change must work both ways:

- a consumer built against the **old** schema must read events of the **new** one: a field
  the old schema requires must still be present and required, with the same type, and
  no value the old schema rejects may appear (a new enum value, a looser pattern or
  length: the saga's own models validate strictly, as most readers do);
- a consumer built against the **new** schema must read **old** events: a field cannot
  become required that old events may lack, no enum value they may carry can go, and
  no constraint may reject values the old schema allowed.

:func:`find_breaking_changes` reports, with a JSON path for each:

- ``removed``: a field required in the old schema is missing (removed or renamed);
- ``no-longer-required``: a field required in the old schema became optional;
- ``type-changed``: a field's JSON type (or format) differs;
- ``enum-value-removed``: a value the old enum allowed is gone;
- ``new-required``: a field old events do not have to carry is required now;
- ``enum-value-added``: a value old readers reject (unless ``enum_additions_break=False``,
  for consumers known to accept unknown values);
- ``constraint-tightened``: a bound (``minLength``, ``maximum``…) rejects values the old
  schema allowed: old events may fail new readers;
- ``constraint-loosened``: a bound allows values the old schema rejected: new events may
  fail old readers;
- ``constraint-changed``: a ``pattern`` or a conditional rule (``allOf``/``if``/``then``)
  differs, which can break either side.

Adding an optional field, or removing an optional one, is compatible (readers ignore
unknown fields). ``$ref`` into ``$defs``, ``anyOf``/``oneOf`` unions (``Optional``),
``const``/``enum``, objects, arrays and ``additionalProperties`` maps are understood.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

JSON_TYPES = frozenset({"array", "boolean", "integer", "null", "number", "object", "string"})
LOWER_BOUNDS = ("minLength", "minimum", "exclusiveMinimum", "minItems", "minProperties")
"""Raising one of these rejects values the old schema allowed."""
UPPER_BOUNDS = ("maxLength", "maximum", "exclusiveMaximum", "maxItems", "maxProperties")
"""Lowering one of these rejects values the old schema allowed."""


@dataclass(frozen=True, slots=True)
class BreakingChange:
    """One incompatibility: where (a JSON path such as ``$.result.trackingId``), what kind,
    and a sentence for the developer."""

    path: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.kind}: {self.detail}"


class _Schema:
    """A schema document, to resolve local ``$ref`` against."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def resolve(self, node: Any, seen: frozenset[str] = frozenset()) -> dict[str, Any]:
        if not isinstance(node, dict):
            return {}
        ref = node.get("$ref")
        if isinstance(ref, str):
            if ref in seen:
                return {}
            if not ref.startswith("#/"):
                raise ValueError(f"only local $ref is supported, got {ref!r}")
            target: Any = self.document
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            merged = {**self.resolve(target, seen | {ref}),
                      **{k: v for k, v in node.items() if k != "$ref"}}
            return merged
        return node

    def branches(self, node: Any) -> list[dict[str, Any]]:
        """The alternatives of a union (flattened), else the node itself."""
        resolved = self.resolve(node)
        for key in ("anyOf", "oneOf"):
            if isinstance(resolved.get(key), list):
                out: list[dict[str, Any]] = []
                for branch in resolved[key]:
                    out.extend(self.branches(branch))
                return out
        return [resolved]

    def types(self, node: Any) -> frozenset[str]:
        """The JSON types a value may have (all of them when unconstrained)."""
        found: set[str] = set()
        for branch in self.branches(node):
            declared = branch.get("type")
            if isinstance(declared, str):
                found.add(declared)
            elif isinstance(declared, list):
                found.update(str(t) for t in declared)
            elif "const" in branch or "enum" in branch:
                found.update(_type_of(v) for v in _values(branch) or [])
            elif "properties" in branch:
                found.add("object")
            else:
                return JSON_TYPES
        return frozenset(found)

    def formats(self, node: Any) -> frozenset[str]:
        return frozenset(str(b["format"]) for b in self.branches(node) if "format" in b)

    def keyword(self, node: Any, name: str) -> Any:
        """`name`'s value on the non-null branches of `node`: the value when they all
        agree, None when none has it (a union of differing values counts as changed)."""
        found = [b.get(name) for b in self.branches(node) if b.get("type") != "null"]
        values = {json.dumps(v, sort_keys=True) for v in found}
        if values == {"null"}:
            return None
        if len(values) == 1:
            return found[0]
        return sorted(values)

    def enum(self, node: Any) -> list[Any] | None:
        """The allowed values, or None when any value of the types is allowed."""
        values: list[Any] = []
        for branch in self.branches(node):
            branch_values = _values(branch)
            if branch_values is None:
                if branch.get("type") == "null":
                    values.append(None)
                    continue
                return None
            values.extend(branch_values)
        return values

    def object_branch(self, node: Any) -> dict[str, Any] | None:
        for branch in self.branches(node):
            if "properties" in branch or branch.get("type") == "object":
                return branch
        return None

    def array_branch(self, node: Any) -> dict[str, Any] | None:
        for branch in self.branches(node):
            if branch.get("type") == "array":
                return branch
        return None


def _values(node: dict[str, Any]) -> list[Any] | None:
    if "const" in node:
        return [node["const"]]
    if isinstance(node.get("enum"), list):
        return list(node["enum"])
    return None


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _fmt(values: list[Any]) -> str:
    return ", ".join(repr(v) for v in values)


def _short(value: Any) -> str:
    text = "none" if value is None else json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def find_breaking_changes(old: dict[str, Any], new: dict[str, Any], *,
                          enum_additions_break: bool = True) -> list[BreakingChange]:
    """The changes from schema `old` to schema `new` that break a consumer on either
    side (see the module's docstring); empty when `new` is compatible with `old`.
    ``enum_additions_break=False`` is for consumers that accept values they do not
    know (the saga's own models do not)."""
    old_doc, new_doc = _Schema(old), _Schema(new)
    changes: list[BreakingChange] = []

    def compare(old_node: Any, new_node: Any, path: str, depth: int) -> None:
        if depth > 32:  # a recursive schema: stop descending
            return
        old_types, new_types = old_doc.types(old_node), new_doc.types(new_node)
        if old_types != new_types:
            changes.append(BreakingChange(
                path, "type-changed",
                f"type was {sorted(old_types)}, is now {sorted(new_types)}"))
            return
        old_formats, new_formats = old_doc.formats(old_node), new_doc.formats(new_node)
        if old_formats != new_formats:
            changes.append(BreakingChange(
                path, "type-changed",
                f"format was {sorted(old_formats)}, is now {sorted(new_formats)}"))
        old_enum, new_enum = old_doc.enum(old_node), new_doc.enum(new_node)
        if old_enum is None and new_enum is not None:
            changes.append(BreakingChange(
                path, "constraint-tightened",
                f"now limited to {_fmt(new_enum)}: old events may carry other values"))
        if old_enum is not None:
            if new_enum is None:
                if enum_additions_break:
                    changes.append(BreakingChange(
                        path, "enum-value-added",
                        f"was limited to {_fmt(old_enum)}, now takes any value"))
            else:
                removed = [v for v in old_enum if v not in new_enum]
                if removed:
                    changes.append(BreakingChange(
                        path, "enum-value-removed",
                        f"value(s) {_fmt(removed)} removed; old events may carry them"))
                added = [v for v in new_enum if v not in old_enum]
                if added and enum_additions_break:
                    changes.append(BreakingChange(
                        path, "enum-value-added",
                        f"value(s) {_fmt(added)} added; old strict readers reject them"))
        compare_constraints(old_node, new_node, path)
        old_obj, new_obj = old_doc.object_branch(old_node), new_doc.object_branch(new_node)
        if old_obj is not None and new_obj is not None:
            compare_objects(old_obj, new_obj, path, depth)
        old_arr, new_arr = old_doc.array_branch(old_node), new_doc.array_branch(new_node)
        if old_arr is not None and new_arr is not None:
            compare(old_arr.get("items", {}), new_arr.get("items", {}), f"{path}[]", depth + 1)

    def compare_constraints(old_node: Any, new_node: Any, path: str) -> None:
        for name in LOWER_BOUNDS + UPPER_BOUNDS:
            before, after = old_doc.keyword(old_node, name), new_doc.keyword(new_node, name)
            if before == after:
                continue
            lower = name in LOWER_BOUNDS
            if not all(isinstance(v, int | float | None) for v in (before, after)):
                changes.append(BreakingChange(path, "constraint-changed",
                                              f"{name} was {before!r}, is now {after!r}"))
            elif after is None or (before is not None and (after < before if lower
                                                           else after > before)):
                changes.append(BreakingChange(
                    path, "constraint-loosened",
                    f"{name} was {before!r}, is now {after!r}: new events may carry "
                    "values old readers reject"))
            else:
                changes.append(BreakingChange(
                    path, "constraint-tightened",
                    f"{name} was {before!r}, is now {after!r}: old events may carry "
                    "values new readers reject"))
        for name in ("pattern", "allOf"):
            before, after = old_doc.keyword(old_node, name), new_doc.keyword(new_node, name)
            if json.dumps(before, sort_keys=True) != json.dumps(after, sort_keys=True):
                changes.append(BreakingChange(
                    path, "constraint-changed",
                    f"{name} was {_short(before)}, is now {_short(after)}: either side "
                    "may reject the other's values"))

    def compare_objects(old_obj: dict[str, Any], new_obj: dict[str, Any], path: str,
                        depth: int) -> None:
        old_props: dict[str, Any] = old_obj.get("properties") or {}
        new_props: dict[str, Any] = new_obj.get("properties") or {}
        old_required = set(old_obj.get("required") or [])
        new_required = set(new_obj.get("required") or [])
        for name, old_prop in old_props.items():
            where = f"{path}.{name}"
            if name not in new_props:
                if name in old_required:
                    changes.append(BreakingChange(
                        where, "removed",
                        "required in the old schema but missing now (removed or renamed); "
                        "old consumers need it"))
                continue
            if name in old_required and name not in new_required:
                changes.append(BreakingChange(
                    where, "no-longer-required",
                    "required in the old schema but optional now; old consumers need it"))
            if name not in old_required and name in new_required:
                changes.append(BreakingChange(
                    where, "new-required",
                    "optional in the old schema but required now; old events may lack it"))
            compare(old_prop, new_props[name], where, depth + 1)
        for name in sorted(new_required - set(old_props)):
            changes.append(BreakingChange(
                f"{path}.{name}", "new-required",
                "a new required field; old events do not carry it (make it optional "
                "with a default)"))
        old_extra, new_extra = old_obj.get("additionalProperties"), new_obj.get(
            "additionalProperties")
        if isinstance(old_extra, dict) and isinstance(new_extra, dict):
            compare(old_extra, new_extra, f"{path}.*", depth + 1)

    compare(old, new, "$", 0)
    return changes
