"""Extension cfn_iam_managed_policies: a role attaches the managed policies its template
names, a policy's new document becomes its default version, and both go with their
stack (moto 5.2.5 attaches none, updates none and leaves the policy behind)."""

from __future__ import annotations

import json
from typing import Any

from core_saga.emulator import Emulator

from ._cfn import deploy, unique


def _template(policy: str, role: str, actions: list[str]) -> dict[str, Any]:
    return {"Resources": {
        "Policy": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {
            "ManagedPolicyName": policy, "PolicyDocument": {
                "Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": actions, "Resource": "*"}]}}},
        "Role": {"Type": "AWS::IAM::Role", "Properties": {
            "RoleName": role, "ManagedPolicyArns": [{"Ref": "Policy"}],
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "sts:AssumeRole",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"}}]}}}}}


def test_attached_updated_and_deleted_with_the_stack(emulator: Emulator) -> None:
    cf, iam = emulator.boto3_client("cloudformation"), emulator.boto3_client("iam")
    stack, policy, role = unique("stack"), unique("p"), unique("r")
    assert deploy(cf, stack, _template(policy, role, ["sqs:SendMessage"]))[
        "StackStatus"] == "CREATE_COMPLETE"
    [attached] = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert attached["PolicyName"] == policy
    arn = attached["PolicyArn"]

    updated = deploy(cf, stack, _template(policy, role, ["sqs:ReceiveMessage"]))
    assert updated["StackStatus"] == "UPDATE_COMPLETE", updated.get("StackStatusReason")
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"][
        "Document"]
    document = json.loads(document) if isinstance(document, str) else document
    assert document["Statement"][0]["Action"] == ["sqs:ReceiveMessage"]

    cf.delete_stack(StackName=stack)
    assert policy not in [p["PolicyName"] for p in iam.list_policies(Scope="Local")[
        "Policies"]]
    # the same names deploy again (cdk destroy, then deploy of the same stage)
    again = deploy(cf, unique("stack"), _template(policy, role, ["sqs:SendMessage"]))
    assert again["StackStatus"] == "CREATE_COMPLETE", again.get("StackStatusReason")
