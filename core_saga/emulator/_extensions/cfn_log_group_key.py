"""``KmsKeyId`` of an ``AWS::Logs::LogGroup`` created or updated by CloudFormation.

The gap: moto's model passes the template's properties to ``create_log_group``, which
reads the API's ``kmsKeyId``, not CloudFormation's ``KmsKeyId``: a group the template
encrypts with a customer-managed key is created without it (DescribeLogGroups shows no
``kmsKeyId``), so the encryption a stack asks for cannot be checked.

The fix: the key is set on create and on update (``cfn_updates_without_support`` gives
log groups their update), and removed when the template drops it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def apply() -> None:
    """Wrap the LogGroup model's create and update (apply after
    ``cfn_updates_without_support``)."""
    models: Any = importlib.import_module("moto.logs.models")
    group_class = models.LogGroup
    original_create: Callable[..., Any] = group_class.create_from_cloudformation_json.__func__
    original_update: Callable[..., Any] = group_class.update_from_cloudformation_json.__func__

    def create(cls: Any, /, resource_name: str, cloudformation_json: Any, account_id: str,
               region_name: str, **kwargs: Any) -> Any:
        group = original_create(cls, resource_name, cloudformation_json, account_id,
                                region_name, **kwargs)
        group.kms_key_id = cloudformation_json.get("Properties", {}).get("KmsKeyId")
        return group

    def update(cls: Any, /, original_resource: Any, new_resource_name: str,
               cloudformation_json: Any, account_id: str, region_name: str) -> Any:
        group = original_update(cls, original_resource, new_resource_name,
                                cloudformation_json, account_id, region_name)
        group.kms_key_id = cloudformation_json.get("Properties", {}).get("KmsKeyId")
        return group

    group_class.create_from_cloudformation_json = classmethod(create)
    group_class.update_from_cloudformation_json = classmethod(update)
