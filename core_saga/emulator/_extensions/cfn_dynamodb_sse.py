"""``SSESpecification`` of an ``AWS::DynamoDB::Table`` created by CloudFormation.

The gap: CloudFormation writes ``{"SSEEnabled": true, "SSEType": "KMS",
"KMSMasterKeyId": ...}``; moto's model hands that to ``create_table``, which reads the
API's ``Enabled``: the table is created unencrypted (DescribeTable has no
``SSEDescription``), so a table the template encrypts with a customer-managed key
cannot be checked.

The fix: the CloudFormation shape is translated to the API's before the table is made.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def apply() -> None:
    """Wrap ``Table.create_from_cloudformation_json``."""
    models: Any = importlib.import_module("moto.dynamodb.models.table")
    table_class = models.Table
    original: Callable[..., Any] = table_class.create_from_cloudformation_json.__func__

    def create(cls: Any, /, resource_name: str, cloudformation_json: Any, account_id: str,
               region_name: str, **kwargs: Any) -> Any:
        properties = dict(cloudformation_json.get("Properties", {}))
        sse = properties.get("SSESpecification")
        if isinstance(sse, dict) and "SSEEnabled" in sse:
            translated = {"Enabled": bool(sse["SSEEnabled"])}
            if sse.get("SSEType"):
                translated["SSEType"] = sse["SSEType"]
            if sse.get("KMSMasterKeyId"):
                translated["KMSMasterKeyId"] = sse["KMSMasterKeyId"]
            properties["SSESpecification"] = translated
        return original(cls, resource_name, {**cloudformation_json, "Properties": properties},
                        account_id, region_name, **kwargs)

    table_class.create_from_cloudformation_json = classmethod(create)
