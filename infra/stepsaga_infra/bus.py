"""The custom EventBridge bus, the rules that start the supervisor workflows, the
status rule that tells the saga about executions that ended without an outcome, and the
archives that keep the events for replay.

A ``SupervisionRequested`` event from a stepsaga saga (``source`` starting with
``stepsaga.``) whose ``detail.workflow`` names a workflow starts that workflow's state
machine with the event's ``detail`` as input (InputPath ``$.detail``). Each target has
its own role (``states:StartExecution`` on that machine only, assumable by EventBridge
for that rule only), a retry policy, and the rule dead-letter queue for events it could
not deliver.

Step Functions' own "Step Functions Execution Status Change" events (source
``aws.states``, on the account's default bus) of the supervisor machines with status
FAILED, TIMED_OUT or ABORTED go to the saga's queue, each wrapped in an envelope (an
input transformer), with the same retry policy and DLQ.

Two archives keep events for replay (``eventArchiveRetentionDays``): every event of the
custom bus, and the supervisor machines' status events of the default bus.
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

from bridge.contracts import (
    EVENT_SOURCE_PREFIX,
    EXECUTION_STATUS_DETAIL_TYPE,
    STEP_FUNCTIONS_SOURCE,
    UNFINISHED_STATUSES,
    status_event_input_template,
)

from .queues import queue_encryption
from .settings import InfraSettings

SUPERVISION_REQUESTED: Final = "SupervisionRequested"
"""The ``detail-type`` the rules match (see docs/contracts-notes.md)."""
RULE_DLQ: Final = "supervision-events-dlq"
"""The queue (after the stage prefix) for events a rule could not deliver."""
STATUS_RULE_SUFFIX: Final = "supervision-status"
"""The status rule is ``stepsaga-<stage>-supervision-status`` (on the default bus)."""
BUS_ARCHIVE_SUFFIX: Final = "bus"
STATUS_ARCHIVE_SUFFIX: Final = "status"


def status_rule_name(settings: InfraSettings) -> str:
    """``stepsaga-<stage>-supervision-status``."""
    return f"{settings.name_prefix}-{STATUS_RULE_SUFFIX}"


def archive_name(settings: InfraSettings, suffix: str) -> str:
    """``stepsaga-<stage>-bus`` (every event of the bus) or ``stepsaga-<stage>-status``
    (the status events of the default bus)."""
    return f"{settings.name_prefix}-{suffix}"


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
    """``stepsaga-<stage>``: the bus, one rule per workflow, the status rule to
    `saga_queue`, the rule DLQ, the archives."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: InfraSettings,
                 state_machines: Mapping[str, sfn.IStateMachine], saga_queue: sqs.IQueue,
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
                max_event_age=Duration.seconds(settings.event_max_age_seconds),
            ))
            self.rules[workflow] = rule
            self.roles[workflow] = role
        machine_arns = [m.state_machine_arn for m in state_machines.values()]
        status_pattern = events.EventPattern(
            source=[STEP_FUNCTIONS_SOURCE], detail_type=[EXECUTION_STATUS_DETAIL_TYPE],
            detail={"status": list(UNFINISHED_STATUSES), "stateMachineArn": machine_arns})
        self.status_rule = events.Rule(
            self, "StatusRule", rule_name=status_rule_name(settings),
            description="Supervisor executions that ended FAILED, TIMED_OUT or ABORTED: "
                        "their status event to the saga's queue",
            event_pattern=status_pattern)  # the default bus: where Step Functions puts them
        self.status_rule.add_target(targets.SqsQueue(
            saga_queue, dead_letter_queue=self.dead_letter_queue,
            retry_attempts=settings.event_retry_attempts,
            max_event_age=Duration.seconds(settings.event_max_age_seconds)))
        # The envelope wraps the whole event (<aws.events.event.json>), which CDK's
        # RuleTargetInput cannot say: set the target's InputTransformer directly.
        rule_resource = self.status_rule.node.default_child
        if not isinstance(rule_resource, events.CfnRule):  # CDK's L2 Rule is one
            raise TypeError(f"the status rule's resource is a {type(rule_resource)}")
        rule_resource.add_property_override("Targets.0.InputTransformer",
                                            status_event_input_template())
        retention = (Duration.days(settings.event_archive_retention_days)
                     if settings.event_archive_retention_days else None)
        self.archive = self.bus.archive(
            "Archive", archive_name=archive_name(settings, BUS_ARCHIVE_SUFFIX),
            description=f"Every event of the {settings.name_prefix} bus, for replay",
            event_pattern=events.EventPattern(account=[Aws.ACCOUNT_ID]),
            retention=retention)
        default_bus = events.EventBus.from_event_bus_name(self, "DefaultBus", "default")
        self.status_archive = events.Archive(
            self, "StatusArchive", source_event_bus=default_bus,
            archive_name=archive_name(settings, STATUS_ARCHIVE_SUFFIX),
            description="Status events of the stepsaga supervisor executions, for replay",
            event_pattern=status_pattern, retention=retention)
