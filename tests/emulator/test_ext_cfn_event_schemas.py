"""Extension cfn_event_schemas: a registry and its schemas deploy with their stack (moto
5.2.5 skips both types), with AWS's ARNs, a version that counts content changes, and go
with the stack; ``/moto-api/stepsaga/schemas`` shows them."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from core_saga.emulator import Emulator

from ._cfn import deploy, outputs, unique


def registries(emulator: Emulator) -> dict[str, Any]:
    with urllib.request.urlopen(f"{emulator.endpoint_url}/moto-api/stepsaga/schemas",
                                timeout=5) as response:
        found: dict[str, Any] = json.loads(response.read())
        return found


def _template(registry: str, content: dict[str, Any]) -> dict[str, Any]:
    return {"Resources": {
        "Registry": {"Type": "AWS::EventSchemas::Registry", "Properties": {
            "RegistryName": registry, "Description": "events"}},
        "Schema": {"Type": "AWS::EventSchemas::Schema", "DependsOn": "Registry",
                   "Properties": {"RegistryName": registry, "SchemaName": "ns@Thing",
                                  "Type": "JSONSchemaDraft4",
                                  "Content": json.dumps(content)}}},
        "Outputs": {"Arn": {"Value": {"Ref": "Schema"}},
                    "Version": {"Value": {"Fn::GetAtt": ["Schema", "SchemaVersion"]}}}}


def test_registry_and_schema_live_and_die_with_their_stack(emulator: Emulator) -> None:
    cf = emulator.boto3_client("cloudformation")
    stack, registry = unique("stack"), unique("reg")
    first = {"type": "object", "required": ["id"]}
    created = deploy(cf, stack, _template(registry, first))
    assert created["StackStatus"] == "CREATE_COMPLETE", created.get("StackStatusReason")
    assert outputs(created) == {
        "Arn": f"arn:aws:schemas:us-east-1:123456789012:schema/{registry}/ns@Thing",
        "Version": "1"}
    schema = registries(emulator)[registry]["schemas"]["ns@Thing"]
    assert json.loads(schema["content"]) == first and schema["type"] == "JSONSchemaDraft4"

    updated = deploy(cf, stack, _template(registry, {**first, "title": "Thing"}))
    assert outputs(updated)["Version"] == "2"
    cf.delete_stack(StackName=stack)
    assert registry not in registries(emulator)
