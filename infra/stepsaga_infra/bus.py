"""The custom EventBridge bus and the rules that start the supervisor workflows.

A ``SupervisionRequested`` event from a stepsaga saga (``source`` starting with
``stepsaga.``) whose ``detail.workflow`` names a workflow starts that workflow's state
machine with the event's ``detail`` as input (InputPath ``$.detail``). Each target has
its own role (``states:StartExecution`` on that machine only, assumable by EventBridge
for that rule only), a retry policy, and the rule dead-letter queue for events it could
not deliver.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from bridge.contracts import EVENT_SOURCE_PREFIX

from .queues import queue_encryption
from .settings import InfraSettings

SUPERVISION_REQUESTED: Final = "SupervisionRequested"
"""The ``detail-type`` the rules match (see docs/contracts-notes.md)."""
RULE_DLQ: Final = "supervision-events-dlq"
"""The queue (after the stage prefix) for events a rule could not deliver."""


def event_pattern(workflow: str) -> dict[str, object]:
    """The rule's pattern: ``SupervisionRequested`` events from a stepsaga saga (source
    ``stepsaga.<SagaType>``) for `workflow`."""
    return {"source": [{"prefix": EVENT_SOURCE_PREFIX}],
            "detail-type": [SUPERVISION_REQUESTED], "detail": {"workflow": [workflow]}}


def rule_name(settings: InfraSettings, workflow: str) -> str:
    """``stepsaga-<stage>-<workflow>``."""
    return f"{settings.name_prefix}-{workflow}"


def rule_arn(settings: InfraSettings, workflow: str) -> str:
    """The ARN `workflow`'s rule will have (a rule on a custom bus:
    ``rule/<bus>/<rule>``), for the trust policy that must name it before it exists."""
    return (f"arn:{Aws.PARTITION}:events:{Aws.REGION}:{Aws.ACCOUNT_ID}:rule/"
            f"{settings.name_prefix}/{rule_name(settings, workflow)}")


class SupervisionBus(Construct):
    """``stepsaga-<stage>``: the bus, one rule per workflow, the rule DLQ."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: InfraSettings,
                 state_machines: Mapping[str, sfn.IStateMachine],
                 removal_policy: RemovalPolicy, key: kms.IKey | None) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(self, "Bus", event_bus_name=settings.name_prefix)
        self.dead_letter_queue = sqs.Queue(
            self, "RuleDlq",
            queue_name=f"{settings.queue_prefix}{RULE_DLQ}",
            **queue_encryption(key),
            enforce_ssl=True,
            retention_period=Duration.days(settings.dlq_retention_days),
            removal_policy=removal_policy,
        )
        NagSuppressions.add_resource_suppressions(self.dead_letter_queue, [NagPackSuppression(
            id="AwsSolutions-SQS3",
            reason="This queue is itself a dead-letter queue: the EventBridge rules' "
                   "target DLQ (events that could not start a workflow). A DLQ of a DLQ "
                   "would only hide them further.")])
        self.rules: dict[str, events.Rule] = {}
        self.roles: dict[str, iam.Role] = {}
        for workflow, machine in state_machines.items():
            role = iam.Role(
                self, f"{workflow}TargetRole",
                description=f"EventBridge starts the stepsaga {settings.stage} {workflow} "
                            "state machine.",
                # the confused-deputy guard: only this rule may pass the role
                assumed_by=iam.ServicePrincipal("events.amazonaws.com", conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnEquals": {"aws:SourceArn": rule_arn(settings, workflow)}}),
            )
            rule = events.Rule(
                self, f"{workflow}Rule",
                rule_name=rule_name(settings, workflow),
                description=f"{SUPERVISION_REQUESTED} for {workflow} starts its state machine",
                event_bus=self.bus,
                event_pattern=events.EventPattern(
                    source=events.Match.prefix(EVENT_SOURCE_PREFIX),
                    detail_type=[SUPERVISION_REQUESTED], detail={"workflow": [workflow]}),
            )
            # A managed policy, not CDK's inline grant (NIST 800-53 IAMNoInlinePolicy).
            role.add_managed_policy(iam.ManagedPolicy(
                self, f"{workflow}TargetPolicy",
                description=f"EventBridge starts the stepsaga {settings.stage} {workflow} "
                            "state machine.",
                statements=[iam.PolicyStatement(
                    sid="StartExecution", actions=["states:StartExecution"],
                    resources=[machine.state_machine_arn])]))
            rule.add_target(targets.SfnStateMachine(
                machine,
                input=events.RuleTargetInput.from_event_path("$.detail"),
                role=role.without_policy_updates(),
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=settings.event_retry_attempts,
                max_event_age=Duration.hours(settings.event_max_age_hours),
            ))
            self.rules[workflow] = rule
            self.roles[workflow] = role
