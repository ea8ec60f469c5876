"""``AWS::KMS::Key`` created by CloudFormation.

The gap: moto's model hands the template's ``Tags`` (``[{"Key", "Value"}]``) to
``create_key``, which reads KMS's own shape (``TagKey``/``TagValue``): any tagged key —
CDK tags every resource of a tagged stack — fails the change set with
``KeyError: 'TagKey'``. The ``KeyPolicy`` object is stored as a dict, so
GetKeyPolicy answers something that is not a JSON document.

The fix: the model translates the tags and serializes the policy before creating the
key (key usage, spec, description and rotation as before).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import Any


def apply() -> None:
    """Wrap ``moto.kms.models.Key.create_from_cloudformation_json``."""
    models: Any = importlib.import_module("moto.kms.models")
    key_class = models.Key
    original: Callable[..., Any] = key_class.create_from_cloudformation_json.__func__

    def create(cls: Any, /, resource_name: str, cloudformation_json: Any, account_id: str,
               region_name: str, **kwargs: Any) -> Any:
        properties = dict(cloudformation_json.get("Properties", {}))
        properties["Tags"] = [{"TagKey": t.get("Key", t.get("TagKey")),
                               "TagValue": t.get("Value", t.get("TagValue"))}
                              for t in properties.get("Tags", [])]
        policy = properties.get("KeyPolicy")
        if policy is not None and not isinstance(policy, str):
            properties["KeyPolicy"] = json.dumps(policy)
        return original(cls, resource_name, {**cloudformation_json,
                                             "Properties": properties},
                        account_id, region_name, **kwargs)

    key_class.create_from_cloudformation_json = classmethod(create)
