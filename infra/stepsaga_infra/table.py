"""The DynamoDB table where a workflow claims its hand-off id (a conditional ``PutItem``),
so a duplicate EventBridge delivery ends at once."""

from __future__ import annotations

from typing import Final

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from .settings import InfraSettings

PARTITION_KEY: Final = "handoffId"
"""The table's partition key (a string): the ``SupervisionRequested`` hand-off id."""


class ClaimTable(Construct):
    """``stepsaga-<stage>-handoff-claims``: on-demand, point-in-time recovery on,
    encrypted with the AWS-managed KMS key ``aws/dynamodb`` (no key to manage)."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: InfraSettings,
                 removal_policy: RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self, "Table",
            table_name=f"{settings.name_prefix}-handoff-claims",
            partition_key=dynamodb.Attribute(name=PARTITION_KEY,
                                             type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=removal_policy,
        )
