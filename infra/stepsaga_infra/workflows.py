"""The supervisor workflows as Step Functions Standard state machines.

The definitions come from :mod:`supervisor_workflows` (the one source of truth the tests
run too); the table name and queue URLs go in as ``definitionSubstitutions``. Each
machine logs every event (level ALL) to its own log group with a set retention, traces
with X-Ray, and runs as its own role, which may only do what its definition does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from supervisor_workflows import (
    CLAIM_TABLE,
    REVIEW_QUEUE,
    SHIPPING_QUEUE,
    manual_review_definition,
    placeholders_in,
    slow_shipping_definition,
)

from .settings import InfraSettings

MANUAL_REVIEW: Final = "ManualReview"
SLOW_SHIPPING: Final = "SlowShipping"
WORKFLOW_NAMES: Final[tuple[str, ...]] = (MANUAL_REVIEW, SLOW_SHIPPING)
"""The ``workflow`` values the EventBridge rules route on, one state machine each."""

LOG_DELIVERY_ACTIONS: Final[tuple[str, ...]] = (
    "logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLogGroups",
    "logs:DescribeResourcePolicies", "logs:GetLogDelivery", "logs:ListLogDeliveries",
    "logs:PutResourcePolicy", "logs:UpdateLogDelivery")
"""What Step Functions needs to deliver execution logs to CloudWatch Logs. These APIs
support no resource-level permissions: AWS requires ``Resource: *``."""
XRAY_ACTIONS: Final[tuple[str, ...]] = (
    "xray:GetSamplingRules", "xray:GetSamplingTargets", "xray:PutTelemetryRecords",
    "xray:PutTraceSegments")
"""What X-Ray tracing needs; X-Ray supports no resource-level permissions here."""
WILDCARD_ACTIONS: Final = frozenset(LOG_DELIVERY_ACTIONS + XRAY_ACTIONS)
"""The only actions this stack grants on ``Resource: *``."""


@dataclass(frozen=True)
class Workflow:
    """One deployed workflow."""

    name: str
    state_machine: sfn.StateMachine
    role: iam.Role
    log_group: logs.LogGroup


@dataclass(frozen=True)
class WorkflowResources:
    """What the definitions reach: the claim table and the queues."""

    table_name: str
    table_arn: str
    saga_queue: sqs.IQueue
    review_queue: sqs.IQueue
    shipping_queue: sqs.IQueue
    key: kms.IKey | None = None
    """The stack's KMS key (queues, table, log groups), or None for AWS-managed keys."""


def state_machine_arn(settings: InfraSettings, workflow: str) -> str:
    """The ARN `workflow`'s state machine will have (its name is fixed), for trust
    policies that must name it before it exists."""
    return (f"arn:{Aws.PARTITION}:states:{Aws.REGION}:{Aws.ACCOUNT_ID}:stateMachine:"
            f"{settings.name_prefix}-{workflow}")


class SupervisorStateMachines(Construct):
    """``stepsaga-<stage>-ManualReview`` and ``stepsaga-<stage>-SlowShipping``."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: InfraSettings,
                 resources: WorkflowResources, removal_policy: RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.resources = resources
        self.removal_policy = removal_policy
        builders: dict[str, tuple[Callable[[], dict[str, Any]], dict[str, str], list[sqs.IQueue]]]
        builders = {
            MANUAL_REVIEW: (
                lambda: manual_review_definition(settings.manual_review_timings()),
                {CLAIM_TABLE: resources.table_name,
                 REVIEW_QUEUE: resources.review_queue.queue_url},
                [resources.saga_queue, resources.review_queue]),
            SLOW_SHIPPING: (
                lambda: slow_shipping_definition(settings.slow_shipping_timings()),
                {CLAIM_TABLE: resources.table_name,
                 SHIPPING_QUEUE: resources.shipping_queue.queue_url},
                [resources.saga_queue, resources.shipping_queue]),
        }
        self.workflows: dict[str, Workflow] = {
            name: self._workflow(name, build(), substitutions, queues)
            for name, (build, substitutions, queues) in builders.items()}

    def _workflow(self, name: str, definition: dict[str, Any],
                  substitutions: Mapping[str, str], queues: list[sqs.IQueue]) -> Workflow:
        settings = self.settings
        missing = placeholders_in(definition) - set(substitutions)
        if missing:  # a new placeholder in supervisor_workflows needs a value here
            raise ValueError(f"{name}: no substitution for {sorted(missing)}")
        log_group = logs.LogGroup(
            self, f"{name}Logs",
            log_group_name=f"/aws/vendedlogs/states/{settings.name_prefix}-{name}",
            retention=_retention(settings.log_retention_days),
            encryption_key=self.resources.key,
            removal_policy=self.removal_policy,
        )
        if self.resources.key is None:
            NagSuppressions.add_resource_suppressions(log_group, [NagPackSuppression(
                id="NIST.800.53.R5-CloudWatchLogGroupEncrypted",
                reason="encryptionKey is aws-managed for this stage: CloudWatch Logs "
                       "encrypts the group at rest with keys it manages. Stages that "
                       "need a customer-managed key set encryptionKey to create or a key "
                       "ARN (prod does), and the group is encrypted with it.")])
        role = iam.Role(
            self, f"{name}Role",
            description=f"Runs the stepsaga {settings.stage} {name} state machine.",
            # the confused-deputy guard: only this stage's machine of this name
            assumed_by=iam.ServicePrincipal("states.amazonaws.com", conditions={
                "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                "ArnLike": {"aws:SourceArn": state_machine_arn(settings, name)}}),
        )
        statements = [
            iam.PolicyStatement(sid="ClaimHandoff", actions=["dynamodb:PutItem"],
                                resources=[self.resources.table_arn]),
            iam.PolicyStatement(sid="SendToQueues", actions=["sqs:SendMessage"],
                                resources=[queue.queue_arn for queue in queues]),
            # These APIs take no resource-level permissions: AWS requires "*".
            iam.PolicyStatement(sid="DeliverLogs", actions=list(LOG_DELIVERY_ACTIONS),
                                resources=["*"]),
            iam.PolicyStatement(sid="Trace", actions=list(XRAY_ACTIONS), resources=["*"]),
        ]
        if self.resources.key is not None:  # sending to a KMS-encrypted queue
            statements.append(iam.PolicyStatement(
                sid="UseTheStackKey", actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[self.resources.key.key_arn]))
        # A managed policy, not the inline one CDK would add: the machine gets exactly
        # these statements (its own grants are turned off by without_policy_updates).
        policy = iam.ManagedPolicy(
            self, f"{name}Policy", statements=statements,
            description=f"What the stepsaga {settings.stage} {name} state machine does.")
        role.add_managed_policy(policy)
        machine = sfn.StateMachine(
            self, name,
            state_machine_name=f"{settings.name_prefix}-{name}",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(json.dumps(definition)),
            definition_substitutions=dict(substitutions),
            role=role.without_policy_updates(),
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL,
                                include_execution_data=settings.log_execution_data),
            tracing_enabled=True,
            removal_policy=RemovalPolicy.DESTROY,
        )
        # The machine must not start before its role may write logs.
        machine.node.add_dependency(policy)
        NagSuppressions.add_resource_suppressions(policy, [NagPackSuppression(
            id="AwsSolutions-IAM5",
            reason="Step Functions log delivery (logs:CreateLogDelivery and friends) and "
                   "X-Ray (xray:PutTraceSegments and friends) support no resource-level "
                   "permissions: AWS documents Resource '*' for them. Every other "
                   "statement of this policy names this stack's table, queues and key.",
            applies_to=["Resource::*"])])
        return Workflow(name, machine, role, log_group)

    def state_machine(self, name: str) -> sfn.StateMachine:
        """The state machine of workflow `name`."""
        return self.workflows[name].state_machine


_RETENTION: Final[dict[int, logs.RetentionDays]] = {
    1: logs.RetentionDays.ONE_DAY, 3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS, 7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS, 30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS, 90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS, 150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS, 365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS, 545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS, 1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS, 2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS, 2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS, 3653: logs.RetentionDays.TEN_YEARS,
}


def _retention(days: int) -> logs.RetentionDays:
    return _RETENTION[days]

