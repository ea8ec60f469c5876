"""``AWS::EventSchemas::Registry`` and ``AWS::EventSchemas::Schema`` (the EventBridge
Schema Registry).

The gap: moto has no Schema Registry at all. CloudFormation skips the two types with a
warning, so a stack that publishes its event schemas deploys "complete" with the
registry missing, and nothing can show what was registered.

The fix: CloudFormation models that keep registries and their schemas (name, type,
content, description, a version counted up on each content change) in this server,
with the ARNs AWS gives them (``Ref`` is the ARN, as on AWS), updated and deleted with
their stack. ``GET /moto-api/stepsaga/schemas`` lists them (AWS's ``schemas`` API is
not emulated: on AWS use ``aws schemas describe-schema``).
"""

from __future__ import annotations

import importlib
import json
import threading
from typing import Any, Final

ROUTE: Final = "/moto-api/stepsaga/schemas"
_lock = threading.Lock()
REGISTRIES: dict[str, dict[str, Any]] = {}
"""Registry ARN → {"name", "description", "schemas": {name: {...}}}."""
_MODELS: list[type] = []


def _registry_arn(account_id: str, region_name: str, name: str) -> str:
    return f"arn:aws:schemas:{region_name}:{account_id}:registry/{name}"


def _schema_arn(account_id: str, region_name: str, registry: str, name: str) -> str:
    return f"arn:aws:schemas:{region_name}:{account_id}:schema/{registry}/{name}"


def snapshot() -> dict[str, Any]:
    """Every registry and its schemas, by registry name (what the route answers)."""
    with _lock:
        return {r["name"]: {"description": r["description"],
                            "schemas": {n: dict(s) for n, s in r["schemas"].items()}}
                for r in REGISTRIES.values()}


def _respond(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json"}, json.dumps(snapshot()).encode()


def apply() -> None:
    """Register the two models and the listing route."""
    common: Any = importlib.import_module("moto.core.common_models")
    parsing: Any = importlib.import_module("moto.cloudformation.parsing")
    urls: Any = importlib.import_module("moto.moto_api._internal.urls")
    api_models: Any = importlib.import_module("moto.moto_api._internal.models")

    class Registry(common.CloudFormationModel):  # type: ignore[misc]
        """A schema registry."""

        def __init__(self, name: str, description: str, account_id: str,
                     region_name: str) -> None:
            self.name = name
            self.arn = _registry_arn(account_id, region_name, name)
            with _lock:
                entry = REGISTRIES.setdefault(self.arn, {"name": name, "schemas": {}})
                entry["description"] = description

        @property
        def physical_resource_id(self) -> str:
            return self.arn

        @staticmethod
        def cloudformation_name_type() -> str:
            return "RegistryName"

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::EventSchemas::Registry"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr in ("RegistryArn", "RegistryName")

        def get_cfn_attribute(self, attribute_name: str) -> str:
            return self.arn if attribute_name == "RegistryArn" else self.name

        @classmethod
        def create_from_cloudformation_json(
                cls, resource_name: str, cloudformation_json: Any, account_id: str,
                region_name: str, **kwargs: Any) -> Registry:
            properties = cloudformation_json.get("Properties", {})
            return cls(properties.get("RegistryName", resource_name),
                       properties.get("Description", ""), account_id, region_name)

        @classmethod
        def update_from_cloudformation_json(
                cls, original_resource: Any, new_resource_name: str,
                cloudformation_json: Any, account_id: str, region_name: str) -> Registry:
            properties = cloudformation_json.get("Properties", {})
            name = properties.get("RegistryName", original_resource.name)
            if name != original_resource.name:
                original_resource.delete(account_id, region_name)
            return cls(name, properties.get("Description", ""), account_id, region_name)

        @classmethod
        def delete_from_cloudformation_json(
                cls, resource_name: str, cloudformation_json: Any, account_id: str,
                region_name: str) -> None:
            with _lock:  # resource_name is the physical id: the ARN
                REGISTRIES.pop(resource_name, None)

        def delete(self, account_id: str, region_name: str) -> None:
            with _lock:
                REGISTRIES.pop(self.arn, None)

    class Schema(common.CloudFormationModel):  # type: ignore[misc]
        """A schema in a registry."""

        def __init__(self, properties: dict[str, Any], account_id: str,
                     region_name: str) -> None:
            self.registry = str(properties["RegistryName"])
            self.name = str(properties["SchemaName"])
            self.arn = _schema_arn(account_id, region_name, self.registry, self.name)
            self.registry_arn = _registry_arn(account_id, region_name, self.registry)
            content = str(properties["Content"])
            json.loads(content)  # AWS refuses content that is not JSON
            with _lock:
                registry = REGISTRIES.get(self.registry_arn)
                if registry is None:
                    raise ValueError(f"registry {self.registry} does not exist")
                before = registry["schemas"].get(self.name)
                version = 1 if before is None else int(before["version"]) + (
                    before["content"] != content)
                registry["schemas"][self.name] = {
                    "type": str(properties["Type"]), "content": content,
                    "description": str(properties.get("Description", "")),
                    "version": str(version), "arn": self.arn}
                self.version = str(version)

        @property
        def physical_resource_id(self) -> str:
            return self.arn

        @staticmethod
        def cloudformation_name_type() -> str:
            return "SchemaName"

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::EventSchemas::Schema"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr in ("SchemaArn", "SchemaName", "SchemaVersion")

        def get_cfn_attribute(self, attribute_name: str) -> str:
            return {"SchemaArn": self.arn, "SchemaName": self.name,
                    "SchemaVersion": self.version}[attribute_name]

        @classmethod
        def create_from_cloudformation_json(
                cls, resource_name: str, cloudformation_json: Any, account_id: str,
                region_name: str, **kwargs: Any) -> Schema:
            properties = dict(cloudformation_json.get("Properties", {}))
            properties.setdefault("SchemaName", resource_name)
            return cls(properties, account_id, region_name)

        @classmethod
        def update_from_cloudformation_json(
                cls, original_resource: Any, new_resource_name: str,
                cloudformation_json: Any, account_id: str, region_name: str) -> Schema:
            properties = dict(cloudformation_json.get("Properties", {}))
            properties.setdefault("SchemaName", original_resource.name)
            if (properties["SchemaName"], properties["RegistryName"]) != (
                    original_resource.name, original_resource.registry):
                original_resource.delete(account_id, region_name)
            return cls(properties, account_id, region_name)

        @classmethod
        def delete_from_cloudformation_json(
                cls, resource_name: str, cloudformation_json: Any, account_id: str,
                region_name: str) -> None:
            registry_arn = resource_name.replace(":schema/", ":registry/").rsplit("/", 1)[0]
            with _lock:
                registry = REGISTRIES.get(registry_arn)
                if registry is not None:
                    registry["schemas"].pop(resource_name.rsplit("/", 1)[-1], None)

        def delete(self, account_id: str, region_name: str) -> None:
            with _lock:
                registry = REGISTRIES.get(self.registry_arn)
                if registry is not None:
                    registry["schemas"].pop(self.name, None)

    for cached in (parsing.get_model_list, parsing.get_model_map,
                   parsing.get_name_type_map):
        cached.cache_clear()
    _MODELS.extend([Registry, Schema])  # moto finds models as CloudFormationModel subclasses
    urls.url_paths["{0}" + ROUTE + "$"] = _respond
    original_reset = api_models.MotoAPIBackend.reset

    def reset(self: Any) -> None:  # POST /moto-api/reset forgets these too
        with _lock:
            REGISTRIES.clear()
        original_reset(self)

    api_models.MotoAPIBackend.reset = reset
