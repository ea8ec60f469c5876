"""The stack's outputs: what the workers' configuration reads after a deploy (see
docs/deploy.md for which output feeds which setting)."""

from __future__ import annotations

from typing import Final

from aws_cdk import CfnOutput
from aws_cdk import aws_kms as kms
from constructs import Construct

from .bus import SupervisionBus
from .monitoring import Monitoring
from .queues import MessagingQueues, logical_name
from .schemas import SchemaRegistry
from .settings import InfraSettings
from .table import ClaimTable
from .workers import WorkerAccess
from .workflows import SupervisorStateMachines

QUEUE_PREFIX_OUTPUT: Final = "QueuePrefix"
EVENT_BUS_NAME_OUTPUT: Final = "EventBusName"
EVENT_BUS_ARN_OUTPUT: Final = "EventBusArn"
CLAIM_TABLE_OUTPUT: Final = "ClaimTableName"
RULE_DLQ_OUTPUT: Final = "SupervisionEventsDlqUrl"
WORKERS_POLICY_OUTPUT: Final = "WorkersPolicyArn"
CONSOLE_POLICY_OUTPUT: Final = "ConsolePolicyArn"
WORKER_ROLE_OUTPUT: Final = "WorkerRoleArn"
KEY_OUTPUT: Final = "EncryptionKeyArn"
REGISTRY_OUTPUT: Final = "SchemaRegistryName"
ALARM_TOPIC_OUTPUT: Final = "AlarmTopicArn"
DASHBOARD_OUTPUT: Final = "DashboardName"


def queue_url_output(queue: str) -> str:
    """The output holding the URL of work queue `queue` (``order-saga`` →
    ``OrderSagaQueueUrl``)."""
    return f"{logical_name(queue)}QueueUrl"


def dlq_url_output(queue: str) -> str:
    """The output holding the URL of `queue`'s dead-letter queue."""
    return f"{logical_name(queue)}DlqUrl"


def state_machine_output(workflow: str) -> str:
    """The output holding the ARN of `workflow`'s state machine."""
    return f"{workflow}StateMachineArn"


def add_outputs(scope: Construct, *, settings: InfraSettings, queues: MessagingQueues,
                bus: SupervisionBus, machines: SupervisorStateMachines,
                table: ClaimTable, access: WorkerAccess, schemas: SchemaRegistry,
                key: kms.IKey | None, monitoring: Monitoring | None = None) -> None:
    """A ``CfnOutput`` for every queue URL (and DLQ URL), the bus, the state machine
    ARNs, the claim table, the workers' policies (and role), the key, the schema
    registry, the alarm topic and the dashboard."""
    CfnOutput(scope, QUEUE_PREFIX_OUTPUT, value=settings.queue_prefix,
              description="Every queue name starts with this (STEPSAGA_QUEUE_PREFIX).")
    for name, pair in queues.pairs.items():
        CfnOutput(scope, queue_url_output(name), value=pair.queue.queue_url,
                  description=f"URL of the {name} queue.")
        CfnOutput(scope, dlq_url_output(name), value=pair.dlq.queue_url,
                  description=f"URL of the {name} queue's dead-letter queue.")
    CfnOutput(scope, RULE_DLQ_OUTPUT, value=bus.dead_letter_queue.queue_url,
              description="Events the rules could not deliver to a state machine.")
    CfnOutput(scope, EVENT_BUS_NAME_OUTPUT, value=bus.bus.event_bus_name,
              description="The bus SupervisionRequested events are put on.")
    CfnOutput(scope, EVENT_BUS_ARN_OUTPUT, value=bus.bus.event_bus_arn,
              description="ARN of that bus (for events:PutEvents permissions).")
    for workflow, item in machines.workflows.items():
        CfnOutput(scope, state_machine_output(workflow),
                  value=item.state_machine.state_machine_arn,
                  description=f"ARN of the {workflow} Standard state machine.")
    CfnOutput(scope, CLAIM_TABLE_OUTPUT, value=table.table.table_name,
              description="The DynamoDB table of hand-off claims.")
    CfnOutput(scope, WORKERS_POLICY_OUTPUT, value=access.workers_policy.managed_policy_arn,
              description="Attach to the workers' role: exactly what they call.")
    CfnOutput(scope, CONSOLE_POLICY_OUTPUT, value=access.console_policy.managed_policy_arn,
              description="Attach to the ops console's role.")
    if access.role is not None:
        CfnOutput(scope, WORKER_ROLE_OUTPUT, value=access.role.role_arn,
                  description=f"The workers' role for {settings.worker_role} "
                              "(carries the workers' policy).")
    if key is not None:
        CfnOutput(scope, KEY_OUTPUT, value=key.key_arn,
                  description="The KMS key of the queues, the table and the log groups.")
    CfnOutput(scope, REGISTRY_OUTPUT, value=schemas.registry.attr_registry_name,
              description="The EventBridge Schema Registry holding the contracts.")
    if monitoring is not None:
        CfnOutput(scope, ALARM_TOPIC_OUTPUT, value=monitoring.topic.topic_arn,
                  description="Every alarm notifies this SNS topic: subscribe to it.")
        CfnOutput(scope, DASHBOARD_OUTPUT, value=monitoring.dashboard.dashboard_name,
                  description="The stage's CloudWatch dashboard.")
