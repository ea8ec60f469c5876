"""The DynamoDB table where a workflow claims its hand-off id (a conditional ``PutItem``),
so a duplicate EventBridge delivery ends at once."""

from __future__ import annotations

from typing import Any, Final

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from .settings import InfraSettings

PARTITION_KEY: Final = "handoffId"
"""The table's partition key (a string): the ``SupervisionRequested`` hand-off id."""


class ClaimTable(Construct):
    """``stepsaga-<stage>-handoff-claims``: on-demand, point-in-time recovery on,
    encrypted with the AWS-managed key ``aws/dynamodb`` or the stack's KMS key."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: InfraSettings,
                 removal_policy: RemovalPolicy, key: kms.IKey | None) -> None:
        super().__init__(scope, construct_id)
        encryption: dict[str, Any] = (
            {"encryption": dynamodb.TableEncryption.AWS_MANAGED} if key is None else
            {"encryption": dynamodb.TableEncryption.CUSTOMER_MANAGED, "encryption_key": key})
        self.table = dynamodb.Table(
            self, "Table",
            table_name=f"{settings.name_prefix}-handoff-claims",
            partition_key=dynamodb.Attribute(name=PARTITION_KEY,
                                             type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            **encryption,
            removal_policy=removal_policy,
        )
        NagSuppressions.add_resource_suppressions(self.table, [NagPackSuppression(
            id="NIST.800.53.R5-DynamoDBInBackupPlan",
            reason="Point-in-time recovery (35 days of restorable history) is on. The "
                   "table holds only hand-off claims, idempotency markers that matter "
                   "while their execution runs; an AWS Backup plan is the account's "
                   "choice and can select the table by its tags.")],
            apply_to_children=True)
