"""Extension cfn_missing_change_sets: DescribeChangeSet / DeleteChangeSet of a missing
change set answer as AWS does."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from core_saga.emulator import Emulator

from ._cfn import unique


def test_missing_change_sets(emulator: Emulator) -> None:
    cf = emulator.boto3_client("cloudformation")
    name = unique("cdk-deploy-change-set")
    with pytest.raises(ClientError) as caught:
        cf.describe_change_set(StackName="nope", ChangeSetName=name)
    assert caught.value.response["Error"]["Code"] == "ChangeSetNotFound"
    cf.delete_change_set(StackName="nope", ChangeSetName=name)
