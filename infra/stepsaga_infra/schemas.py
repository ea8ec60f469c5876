"""The EventBridge Schema Registry entry of every contract: ``stepsaga-<stage>`` holds
``stepsaga.bridge@<Name>`` for each contract of :data:`bridge.contracts.CONTRACTS`, the
exported JSON Schema translated to the registry's ``JSONSchemaDraft4`` dialect.

Producers and consumers download them (``aws schemas describe-schema``, or code
bindings) instead of copying files; the content is the same as
``docs/contracts/<Name>.v1.schema.json`` (``stepsaga contracts export``).
"""

from __future__ import annotations

import json
from typing import Any, Final

from aws_cdk import aws_eventschemas as eventschemas
from constructs import Construct

from bridge.contracts import CONTRACTS, MESSAGE_NAMESPACE, contract_schema

from .settings import InfraSettings

DRAFT4: Final = "http://json-schema.org/draft-04/schema#"
SCHEMA_TYPE: Final = "JSONSchemaDraft4"


def schema_name(contract: type[Any]) -> str:
    """``stepsaga.bridge@SupervisionRequested``: the registry's name of a contract."""
    return f"{MESSAGE_NAMESPACE}@{contract.__name__}"


def to_draft4(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` (JSON Schema 2020-12, as exported) in draft-04, which the registry reads:
    ``$defs`` become ``definitions``, ``const`` a one-value ``enum``, ``if``/``then``
    the equivalent ``anyOf: [not if, then]``, numeric ``exclusiveMinimum`` /
    ``exclusiveMaximum`` the boolean form; ``$id`` becomes ``id``."""
    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        conditions: list[dict[str, Any]] = []
        for key, value in node.items():
            if key == "$defs":
                out["definitions"] = {k: walk(v) for k, v in value.items()}
            elif key == "$ref" and isinstance(value, str):
                out["$ref"] = value.replace("#/$defs/", "#/definitions/")
            elif key == "const":
                out["enum"] = [value]
            elif key in ("if", "then", "else"):
                continue
            elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(
                    value, bool):
                out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
                out[key] = True
            elif key == "$schema":
                out[key] = DRAFT4
            elif key == "$id":
                out["id"] = value
            elif key == "allOf":
                out[key] = [walk(item) for item in value]
            else:
                out[key] = walk(value) if key != "properties" else {
                    k: walk(v) for k, v in value.items()}
        if "if" in node:
            if "then" in node:
                conditions.append({"anyOf": [{"not": walk(node["if"])}, walk(node["then"])]})
            if "else" in node:
                conditions.append({"anyOf": [walk(node["if"]), walk(node["else"])]})
        if conditions:
            out["allOf"] = [*out.get("allOf", []), *conditions]
        return out

    converted: dict[str, Any] = walk(schema)
    converted["$schema"] = DRAFT4
    return converted


class SchemaRegistry(Construct):
    """The registry ``stepsaga-<stage>`` with one schema per contract."""

    def __init__(self, scope: Construct, construct_id: str, *,
                 settings: InfraSettings) -> None:
        super().__init__(scope, construct_id)
        self.registry = eventschemas.CfnRegistry(
            self, "Registry", registry_name=settings.name_prefix,
            description=f"stepsaga {settings.stage}: the bridge's event contracts "
                        "(SupervisionRequested on the bus; the workflows' replies and "
                        "review tasks on SQS).")
        self.schemas: dict[str, eventschemas.CfnSchema] = {}
        for contract in CONTRACTS:
            schema = eventschemas.CfnSchema(
                self, contract.__name__,
                registry_name=settings.name_prefix,
                schema_name=schema_name(contract),
                type=SCHEMA_TYPE,
                content=json.dumps(to_draft4(contract_schema(contract)), sort_keys=True),
                description=(contract.__doc__ or contract.__name__).strip().split("\n")[0])
            schema.add_resource_dependency(self.registry)
            self.schemas[contract.__name__] = schema
