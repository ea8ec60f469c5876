"""The stack's encryption key: none (AWS-managed keys), one it creates, or one given.

With ``encryptionKey: create`` the stack creates a customer-managed KMS key with yearly
rotation; the queues, the claim table and the log groups use it. Its policy lets this
account's IAM policies grant its use (the key policy's root statement), CloudWatch
Logs encrypt this stage's log groups (``kms:EncryptionContext:aws:logs:arn``), and
EventBridge write to the encrypted rule DLQ (only from this stage's rules). With a key
ARN the stack uses that key; its policy is the owner's to keep (see docs/deploy.md).
"""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from .settings import InfraSettings


def log_group_arn_pattern(settings: InfraSettings) -> str:
    """The ARNs of this stage's log groups (for key-policy conditions)."""
    return (f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:"
            f"/aws/vendedlogs/states/{settings.name_prefix}-*")


def rule_arn_pattern(settings: InfraSettings) -> str:
    """The ARNs of this stage's EventBridge rules (on its own bus)."""
    return (f"arn:{Aws.PARTITION}:events:{Aws.REGION}:{Aws.ACCOUNT_ID}:rule/"
            f"{settings.name_prefix}/{settings.name_prefix}-*")


class StackKey(Construct):
    """The key the settings ask for: ``key`` is None for AWS-managed encryption."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: InfraSettings,
                 removal_policy: RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        self.key: kms.IKey | None = None
        if settings.creates_key:
            key = kms.Key(
                self, "Key",
                description=f"stepsaga {settings.stage}: queues, claim table, workflow logs",
                enable_key_rotation=True,
                removal_policy=removal_policy,
            )
            key.add_to_resource_policy(iam.PolicyStatement(
                sid="CloudWatchLogsForThisStage",
                principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*",
                         "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={"ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": log_group_arn_pattern(settings)}}))
            key.add_to_resource_policy(iam.PolicyStatement(
                sid="EventBridgeToTheRuleDlq",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions={"ArnLike": {"aws:SourceArn": rule_arn_pattern(settings)}}))
            self.key = key
        elif settings.customer_managed_key:
            self.key = kms.Key.from_key_arn(self, "Key", settings.encryption_key)
