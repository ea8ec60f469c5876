"""Extension cfn_kms_key: a tagged key with a policy object deploys (moto 5.2.5:
``KeyError: 'TagKey'``), keeps its tags, rotation and a JSON policy."""

from __future__ import annotations

import json

from core_saga.emulator import Emulator

from ._cfn import deploy, outputs, unique


def test_a_tagged_key_deploys_with_its_policy(emulator: Emulator) -> None:
    cf, kms = emulator.boto3_client("cloudformation"), emulator.boto3_client("kms")
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "kms:*", "Resource": "*"}]}
    described = deploy(cf, unique("stack"), {"Resources": {"Key": {
        "Type": "AWS::KMS::Key", "Properties": {
            "KeyPolicy": policy, "EnableKeyRotation": True, "Description": "d",
            "Tags": [{"Key": "project", "Value": "stepsaga"}]}}},
        "Outputs": {"Arn": {"Value": {"Fn::GetAtt": ["Key", "Arn"]}}}})
    assert described["StackStatus"] == "CREATE_COMPLETE", described.get("StackStatusReason")
    arn = outputs(described)["Arn"]
    assert kms.describe_key(KeyId=arn)["KeyMetadata"]["Description"] == "d"
    assert kms.list_resource_tags(KeyId=arn)["Tags"] == [
        {"TagKey": "project", "TagValue": "stepsaga"}]
    assert json.loads(kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"]) == policy
    assert kms.get_key_rotation_status(KeyId=arn)["KeyRotationEnabled"] is True
