"""Extension cfn_dynamodb_sse: a table CloudFormation encrypts with a KMS key is
encrypted with it (moto 5.2.5 makes it unencrypted)."""

from __future__ import annotations

from core_saga.emulator import Emulator

from ._cfn import deploy, unique


def test_a_customer_managed_key_encrypts_the_table(emulator: Emulator) -> None:
    cf, dynamodb = emulator.boto3_client("cloudformation"), emulator.boto3_client("dynamodb")
    key = emulator.boto3_client("kms").create_key()["KeyMetadata"]["Arn"]
    table = unique("t")
    deploy(cf, unique("stack"), {"Resources": {"Table": {
        "Type": "AWS::DynamoDB::Table", "Properties": {
            "TableName": table, "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}],
            "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS",
                                 "KMSMasterKeyId": key}}}}})
    sse = dynamodb.describe_table(TableName=table)["Table"]["SSEDescription"]
    assert (sse["Status"], sse["SSEType"], sse["KMSMasterKeyArn"]) == ("ENABLED", "KMS", key)
