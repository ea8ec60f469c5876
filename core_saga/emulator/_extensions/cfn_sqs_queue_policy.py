"""``AWS::SQS::QueuePolicy``.

The gap: moto has no CloudFormation model for it, so it skips the resource ("No
Moto CloudFormation support") and the queues get no policy: the SSL-only policy
(``enforceSSL``) and the EventBridge rule's permission on its DLQ cannot be checked.

The fix: a model that sets the policy document as the ``Policy`` attribute of each
queue in ``Queues`` (by URL), moves it on update, and removes it on delete (queues
already gone are skipped). moto does not enforce queue policies; this makes them
visible to GetQueueAttributes, as on AWS.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from typing import Any

_MODELS: list[type] = []
"""The model class made by :func:`apply` (kept referenced)."""


def apply() -> None:
    """Apply the fix (the module docstring says what and why)."""
    common: Any = importlib.import_module("moto.core.common_models")
    parsing: Any = importlib.import_module("moto.cloudformation.parsing")
    sqs_models: Any = importlib.import_module("moto.sqs.models")

    def queues_of(properties: Mapping[str, Any], account_id: str, region_name: str
                  ) -> list[Any]:
        backend = sqs_models.sqs_backends[account_id][region_name]
        found = []
        for url in properties.get("Queues", []):
            queue = backend.queues.get(str(url).rstrip("/").rsplit("/", 1)[-1])
            if queue is not None:
                found.append(queue)
        return found

    class QueuePolicy(common.CloudFormationModel):  # type: ignore[misc]
        """The policy of a set of queues."""

        def __init__(self, physical_id: str, properties: Mapping[str, Any],
                     account_id: str, region_name: str) -> None:
            self.id = physical_id  # moto generates "<stack>-<logical id>-<suffix>"
            self.properties = dict(properties)
            self.account_id = account_id
            self.region_name = region_name

        @property
        def physical_resource_id(self) -> str:
            return self.id

        @staticmethod
        def cloudformation_name_type() -> str:
            return ""

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::SQS::QueuePolicy"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr == "Id"

        def get_cfn_attribute(self, attribute_name: str) -> str:
            return self.id

        def attach(self) -> None:
            document = self.properties.get("PolicyDocument", {})
            text = document if isinstance(document, str) else json.dumps(document)
            for queue in queues_of(self.properties, self.account_id, self.region_name):
                queue.policy = text

        def detach(self) -> None:
            for queue in queues_of(self.properties, self.account_id, self.region_name):
                queue.policy = None

        @classmethod
        def create_from_cloudformation_json(
                cls, resource_name: str, cloudformation_json: Any, account_id: str,
                region_name: str, **kwargs: Any) -> QueuePolicy:
            policy = cls(resource_name, cloudformation_json.get("Properties", {}),
                         account_id, region_name)
            policy.attach()
            return policy

        @classmethod
        def update_from_cloudformation_json(
                cls, original_resource: Any, new_resource_name: str,
                cloudformation_json: Any, account_id: str, region_name: str
                ) -> QueuePolicy:
            original_resource.detach()
            original_resource.properties = dict(cloudformation_json.get("Properties", {}))
            original_resource.attach()
            return original_resource  # type: ignore[no-any-return]

        @classmethod
        def delete_from_cloudformation_json(
                cls, resource_name: str, cloudformation_json: Any, account_id: str,
                region_name: str) -> None:
            cls(resource_name, cloudformation_json.get("Properties", {}), account_id,
                region_name).detach()

        def delete(self, account_id: str, region_name: str) -> None:
            self.detach()

    for cached in (parsing.get_model_list, parsing.get_model_map,
                   parsing.get_name_type_map):
        cached.cache_clear()
    _MODELS.append(QueuePolicy)  # moto finds models as CloudFormationModel subclasses
