"""JSON Schemas: the checked-in exports match the models, the models stay compatible with
the previous version (fixtures/v1), and the compatibility checker itself catches each
kind of break."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from bridge.contracts import (
    CONTRACTS,
    SupervisionCompleted,
    contract_schema,
    export_schemas,
    find_breaking_changes,
    render_schema,
    schema_file_name,
)

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "contracts"
PREVIOUS = Path(__file__).parent / "fixtures" / "v1"
REEXPORT = "python -m bridge.contracts docs/contracts"


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.__name__)
def test_checked_in_schema_matches_the_model(contract: type[BaseModel]) -> None:
    path = DOCS / schema_file_name(contract)  # type: ignore[arg-type]
    assert path.exists(), f"{path} is missing: run `{REEXPORT}` and commit it"
    assert path.read_text() == render_schema(contract), (  # type: ignore[arg-type]
        f"{path.name} differs from the model {contract.__name__}: run `{REEXPORT}` and "
        "commit the result (and check test_compatible_with_the_previous_version)")


def test_export_writes_every_contract(tmp_path: Path) -> None:
    written = export_schemas(tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(
        schema_file_name(c) for c in CONTRACTS)
    for path in written:
        schema = json.loads(path.read_text())
        assert schema["$schema"].endswith("2020-12/schema")
        assert schema["type"] == "object"


def test_every_contract_has_a_previous_version_fixture() -> None:
    names = {p.name for p in PREVIOUS.glob("*.schema.json")}
    for contract in CONTRACTS:
        assert schema_file_name(contract) in names, (
            f"copy docs/contracts/{schema_file_name(contract)} into {PREVIOUS} when a "
            "contract is first released")


@pytest.mark.parametrize("path", sorted(PREVIOUS.glob("*.schema.json")), ids=lambda p: p.name)
def test_compatible_with_the_previous_version(path: Path) -> None:
    previous = json.loads(path.read_text())
    by_file = {schema_file_name(c): c for c in CONTRACTS}
    contract = by_file.get(path.name)
    assert contract is not None, f"{path.name}: the contract was removed; consumers need it"
    breaks = find_breaking_changes(previous, contract_schema(contract))
    assert not breaks, (f"{contract.__name__} would break consumers of {path.name}:\n  "
                        + "\n  ".join(map(str, breaks))
                        + "\nKeep the field (or add a new versioned contract) instead.")


# --- the checker itself, on deliberately broken variants -------------------------------

class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True,
                              extra="ignore", frozen=True)


class Original(_Wire):
    handoff_id: str
    outcome: Literal["approved", "rejected", "timed_out"]
    result: dict[str, Any] = Field(default_factory=dict)
    attempts: int
    traceparent: str | None = None


class FieldRemoved(_Wire):
    outcome: Literal["approved", "rejected", "timed_out"]
    result: dict[str, Any] = Field(default_factory=dict)
    attempts: int
    traceparent: str | None = None


class FieldRenamed(_Wire):
    hand_off: str
    outcome: Literal["approved", "rejected", "timed_out"]
    result: dict[str, Any] = Field(default_factory=dict)
    attempts: int
    traceparent: str | None = None


class TypeChanged(_Wire):
    handoff_id: str
    outcome: Literal["approved", "rejected", "timed_out"]
    result: dict[str, Any] = Field(default_factory=dict)
    attempts: str
    traceparent: str | None = None


class EnumValueRemoved(_Wire):
    handoff_id: str
    outcome: Literal["approved", "rejected"]
    result: dict[str, Any] = Field(default_factory=dict)
    attempts: int
    traceparent: str | None = None


class NewRequiredField(_Wire):
    handoff_id: str
    outcome: Literal["approved", "rejected", "timed_out"]
    result: dict[str, Any] = Field(default_factory=dict)
    attempts: int
    traceparent: str | None = None
    reviewer: str


class MadeOptional(_Wire):
    handoff_id: str | None = None
    outcome: Literal["approved", "rejected", "timed_out"]
    result: dict[str, Any] = Field(default_factory=dict)
    attempts: int
    traceparent: str | None = None


class OptionalMadeRequired(_Wire):
    handoff_id: str
    outcome: Literal["approved", "rejected", "timed_out"]
    result: dict[str, Any] = Field(default_factory=dict)
    attempts: int
    traceparent: str | None


class CompatibleEvolution(_Wire):
    """Adds an optional field, drops an optional one."""

    handoff_id: str
    outcome: Literal["approved", "rejected", "timed_out"]
    result: dict[str, Any] = Field(default_factory=dict)
    attempts: int
    reviewer: str | None = None


class EnumValueAdded(_Wire):
    """A producer starts sending a value old readers do not know."""

    handoff_id: str
    outcome: Literal["approved", "rejected", "timed_out", "escalated"]
    result: dict[str, Any] = Field(default_factory=dict)
    attempts: int
    traceparent: str | None = None


class Tightened(_Wire):
    """Rejects values the original allowed: old events may fail new readers."""

    handoff_id: str = Field(min_length=1)
    outcome: Literal["approved", "rejected", "timed_out"]
    result: dict[str, Any] = Field(default_factory=dict)
    attempts: int = Field(le=10)
    traceparent: str | None = Field(default=None, pattern=r"^00-")


class Loosened(_Wire):
    """Allows values the tightened one rejected: new events may fail old readers."""

    handoff_id: str
    outcome: Literal["approved", "rejected", "timed_out"]
    result: dict[str, Any] = Field(default_factory=dict)
    attempts: int = Field(le=100)
    traceparent: str | None = None


def schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(by_alias=True)


@pytest.mark.parametrize(("variant", "expected"), [
    (FieldRemoved, [("$.handoffId", "removed")]),
    (FieldRenamed, [("$.handoffId", "removed"), ("$.handOff", "new-required")]),
    (TypeChanged, [("$.attempts", "type-changed")]),
    (EnumValueRemoved, [("$.outcome", "enum-value-removed")]),
    (NewRequiredField, [("$.reviewer", "new-required")]),
    (MadeOptional, [("$.handoffId", "no-longer-required"), ("$.handoffId", "type-changed")]),
    (OptionalMadeRequired, [("$.traceparent", "new-required")]),
], ids=lambda v: v.__name__ if isinstance(v, type) else "")
def test_the_checker_finds_each_kind_of_break(variant: type[BaseModel],
                                              expected: list[tuple[str, str]]) -> None:
    breaks = find_breaking_changes(schema(Original), schema(variant))
    assert [(b.path, b.kind) for b in breaks] == expected, breaks
    assert str(breaks[0]).startswith(f"{expected[0][0]}: {expected[0][1]}: ")


def test_the_checker_accepts_compatible_evolution() -> None:
    assert find_breaking_changes(schema(Original), schema(Original)) == []
    assert find_breaking_changes(schema(Original), schema(CompatibleEvolution)) == []


def test_a_producer_adding_an_enum_value_breaks_strict_readers() -> None:
    """outcome "escalated": the saga's own model (a Literal) rejects it, so by default
    it is a break; consumers that accept unknown values may say so."""
    breaks = find_breaking_changes(schema(Original), schema(EnumValueAdded))
    assert [(b.path, b.kind) for b in breaks] == [("$.outcome", "enum-value-added")]
    assert "'escalated'" in breaks[0].detail
    assert find_breaking_changes(schema(Original), schema(EnumValueAdded),
                                 enum_additions_break=False) == []


def test_the_real_outcome_gaining_escalated_is_a_break() -> None:
    current = contract_schema(SupervisionCompleted)
    evolved = copy.deepcopy(current)
    evolved["properties"]["outcome"]["enum"].append("escalated")
    assert [(b.path, b.kind) for b in find_breaking_changes(current, evolved)] == [
        ("$.outcome", "enum-value-added")]
    with pytest.raises(ValidationError):  # what a saga on the old model does with it
        SupervisionCompleted.model_validate({
            **json.loads(_completed().detail_json()), "outcome": "escalated"})


def test_constraints_are_judged_both_ways() -> None:
    tightened = {(b.path, b.kind) for b in find_breaking_changes(
        schema(Original), schema(Tightened))}
    assert tightened == {("$.handoffId", "constraint-tightened"),
                         ("$.attempts", "constraint-tightened"),
                         ("$.traceparent", "constraint-changed")}
    loosened = {(b.path, b.kind) for b in find_breaking_changes(
        schema(Tightened), schema(Loosened))}
    assert loosened == {("$.handoffId", "constraint-loosened"),
                        ("$.attempts", "constraint-loosened"),
                        ("$.traceparent", "constraint-changed")}


def test_the_checker_follows_refs_into_nested_models() -> None:
    class Result(_Wire):
        tracking_id: str

    class Inner(_Wire):
        result: Result

    class ResultRenamed(_Wire):
        tracking: str

    class InnerBroken(_Wire):
        result: ResultRenamed

    old, new = schema(Inner), schema(InnerBroken)
    assert "$defs" in old  # the nested model sits behind a $ref
    breaks = find_breaking_changes(old, new)
    assert [(b.path, b.kind) for b in breaks] == [("$.result.trackingId", "removed"),
                                                  ("$.result.tracking", "new-required")]


def _completed() -> SupervisionCompleted:
    return SupervisionCompleted(
        handoff_id="h-1", saga_type="OrderSaga", correlation_id="o-1",
        workflow="ManualReview", reason="big", payload={},
        reply_to="https://sqs.us-east-1.amazonaws.com/123456789012/order-saga",
        execution_arn="arn:aws:states:us-east-1:123456789012:execution:mr:x",
        outcome="approved", task_token="t")


def test_the_checker_on_the_real_contract_variants() -> None:
    current = contract_schema(SupervisionCompleted)
    broken = copy.deepcopy(current)
    broken["properties"].pop("taskToken")
    broken["required"].remove("taskToken")
    broken["properties"]["outcome"]["enum"].remove("timed_out")
    broken["properties"]["schemaVersion"]["type"] = "string"
    kinds = {(b.path, b.kind) for b in find_breaking_changes(current, broken)}
    assert kinds == {("$.taskToken", "removed"), ("$.outcome", "enum-value-removed"),
                     ("$.schemaVersion", "type-changed")}
