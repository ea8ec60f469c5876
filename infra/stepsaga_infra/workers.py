"""What the workers (saga and services) and the ops console may do, as managed policies
— and, if asked, a role for ECS tasks or Lambda functions that carries the workers'.

The permissions are exactly the calls the code makes (tests/infra check them against
the calls a worker made on the emulator):

- workers: ``sqs:GetQueueUrl``, ``GetQueueAttributes``, ``ReceiveMessage``,
  ``DeleteMessage``, ``ChangeMessageVisibility``, ``SendMessage`` on the work queues,
  the review queue (the review consumer the workers host) and their DLQs (a worker
  dead-letters a message itself, with the reason);
  ``events:PutEvents`` on the bus, for ``stepsaga.*`` sources only (hand-offs);
  ``states:SendTaskSuccess``, ``SendTaskFailure``, ``SendTaskHeartbeat`` on the two
  state machines (acknowledging outcomes; the shipping service's answers);
- console: the same SQS actions on the review queue and its DLQ (review tasks), the
  task answers on ManualReview (a reviewer's decision), ``states:DescribeExecution``,
  ``DescribeStateMachineForExecution`` and ``GetExecutionHistory`` on both machines'
  executions (timelines, execution graphs);
- both: ``kms:Decrypt`` and ``kms:GenerateDataKey`` on the stack's key, when it has one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from aws_cdk import Aws
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from bridge.contracts import EVENT_SOURCE_PREFIX

from .settings import InfraSettings

QUEUE_ACTIONS: Final[tuple[str, ...]] = (
    "sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:SendMessage")
"""What a worker does with its queues (core_saga.transports.SqsTransport)."""
TASK_ANSWER_ACTIONS: Final[tuple[str, ...]] = (
    "states:SendTaskFailure", "states:SendTaskHeartbeat", "states:SendTaskSuccess")
"""Answers to a workflow's waiting task (bridge's task-answer sink, TaskHeartbeats)."""
EXECUTION_READ_ACTIONS: Final[tuple[str, ...]] = (
    "states:DescribeExecution", "states:DescribeStateMachineForExecution",
    "states:GetExecutionHistory")
"""What the console reads of an execution (bridge.timeline, the review page, the
execution's graph drawn from its definition)."""
EXECUTION_TRACE_ACTIONS: Final[tuple[str, ...]] = ("states:GetExecutionHistory",)
"""What a worker reads of an execution when tracing is on: its history, once per
hand-off, for the execution's span (bridge's task-answer sink)."""
KEY_ACTIONS: Final[tuple[str, ...]] = ("kms:Decrypt", "kms:GenerateDataKey")
"""What SQS needs of a caller on a KMS-encrypted queue."""
ROLE_PRINCIPALS: Final[Mapping[str, str]] = {
    "ecs": "ecs-tasks.amazonaws.com", "lambda": "lambda.amazonaws.com"}


def _queue_arns(queues: Sequence[sqs.IQueue]) -> list[str]:
    return [queue.queue_arn for queue in queues]


def _execution_arns(machines: Mapping[str, sfn.IStateMachine],
                    settings: InfraSettings) -> list[str]:
    return [f"arn:{Aws.PARTITION}:states:{Aws.REGION}:{Aws.ACCOUNT_ID}:execution:"
            f"{settings.name_prefix}-{name}:*" for name in machines]


class WorkerAccess(Construct):
    """``stepsaga-<stage>-workers`` and ``stepsaga-<stage>-console`` managed policies,
    and with ``workerRole`` a role for the workers."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: InfraSettings,
                 worker_queues: Sequence[sqs.IQueue], review_queues: Sequence[sqs.IQueue],
                 bus: events.IEventBus, machines: Mapping[str, sfn.IStateMachine],
                 review_machine: str, key: kms.IKey | None) -> None:
        super().__init__(scope, construct_id)
        key_statements = [] if key is None else [iam.PolicyStatement(
            sid="UseTheStackKey", actions=list(KEY_ACTIONS), resources=[key.key_arn])]
        self.workers_policy = iam.ManagedPolicy(
            self, "WorkersPolicy",
            managed_policy_name=f"{settings.name_prefix}-workers",
            description=f"stepsaga {settings.stage}: what the saga and service workers do.",
            statements=[
                iam.PolicyStatement(sid="WorkQueues", actions=list(QUEUE_ACTIONS),
                                    resources=_queue_arns(worker_queues)),
                iam.PolicyStatement(
                    sid="HandOffs", actions=["events:PutEvents"],
                    resources=[bus.event_bus_arn],
                    conditions={"StringLike": {"events:source": f"{EVENT_SOURCE_PREFIX}*"}}),
                iam.PolicyStatement(
                    sid="AnswerWorkflowTasks", actions=list(TASK_ANSWER_ACTIONS),
                    resources=[m.state_machine_arn for m in machines.values()]),
                iam.PolicyStatement(
                    sid="TraceExecutions", actions=list(EXECUTION_TRACE_ACTIONS),
                    resources=_execution_arns(machines, settings)),
                *key_statements,
            ])
        NagSuppressions.add_resource_suppressions(self.workers_policy, [NagPackSuppression(
            id="AwsSolutions-IAM5",
            reason="An execution's ARN ends in its name, made per hand-off: with tracing "
                   "on, the workers read the history of executions of this stage's two "
                   "state machines only (the execution's span), named by their machines.",
            applies_to=[f"Resource::arn:<AWS::Partition>:states:<AWS::Region>:"
                        f"<AWS::AccountId>:execution:{settings.name_prefix}-{name}:*"
                        for name in machines])])
        self.console_policy = iam.ManagedPolicy(
            self, "ConsolePolicy",
            managed_policy_name=f"{settings.name_prefix}-console",
            description=f"stepsaga {settings.stage}: what the ops console does.",
            statements=[
                iam.PolicyStatement(sid="ReviewQueue", actions=list(QUEUE_ACTIONS),
                                    resources=_queue_arns(review_queues)),
                iam.PolicyStatement(
                    sid="AnswerReviews", actions=list(TASK_ANSWER_ACTIONS),
                    resources=[machines[review_machine].state_machine_arn]),
                iam.PolicyStatement(sid="ReadExecutions",
                                    actions=list(EXECUTION_READ_ACTIONS),
                                    resources=_execution_arns(machines, settings)),
                *key_statements,
            ])
        NagSuppressions.add_resource_suppressions(self.console_policy, [NagPackSuppression(
            id="AwsSolutions-IAM5",
            reason="An execution's ARN ends in its name, which Step Functions (or the "
                   "EventBridge rule) makes per hand-off: the console reads executions of "
                   "this stage's two state machines only, named by their machines' ARNs.",
            applies_to=[f"Resource::arn:<AWS::Partition>:states:<AWS::Region>:"
                        f"<AWS::AccountId>:execution:{settings.name_prefix}-{name}:*"
                        for name in machines])])
        self.role: iam.Role | None = None
        if settings.worker_role != "none":
            service = ROLE_PRINCIPALS[settings.worker_role]
            source = (f"arn:{Aws.PARTITION}:ecs:{Aws.REGION}:{Aws.ACCOUNT_ID}:*"
                      if settings.worker_role == "ecs" else
                      f"arn:{Aws.PARTITION}:lambda:{Aws.REGION}:{Aws.ACCOUNT_ID}:function:"
                      f"{settings.name_prefix}-*")
            self.role = iam.Role(
                self, "WorkerRole",
                description=f"stepsaga {settings.stage}: the workers' role "
                            f"({settings.worker_role}).",
                assumed_by=iam.ServicePrincipal(service, conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {"aws:SourceArn": source}}),
                managed_policies=[self.workers_policy])
