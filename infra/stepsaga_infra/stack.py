"""The one stack of the app: queues, claim table, state machines, bus and rules."""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy, Stack, Tags
from constructs import Construct

from .bus import SupervisionBus
from .outputs import add_outputs
from .queues import REVIEW_QUEUE, SAGA_QUEUE, SHIPPING_QUEUE, MessagingQueues
from .settings import InfraSettings
from .table import ClaimTable
from .workflows import SupervisorStateMachines, WorkflowResources


class StepsagaStack(Stack):
    """Everything one stage of stepsaga needs on AWS besides the workers and their
    database."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: InfraSettings,
                 **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        data_removal = (RemovalPolicy.DESTROY if settings.removal_policy == "destroy"
                        else RemovalPolicy.RETAIN)
        Tags.of(self).add("project", "stepsaga")
        Tags.of(self).add("stage", settings.stage)
        for key, value in settings.tags.items():
            Tags.of(self).add(key, value)

        # Queues hold messages in flight only: they go with the stack.
        self.queues = MessagingQueues(self, "Queues", settings=settings,
                                      removal_policy=RemovalPolicy.DESTROY)
        self.claims = ClaimTable(self, "Claims", settings=settings,
                                 removal_policy=data_removal)
        self.machines = SupervisorStateMachines(
            self, "Workflows", settings=settings, removal_policy=data_removal,
            resources=WorkflowResources(
                table_name=self.claims.table.table_name,
                table_arn=self.claims.table.table_arn,
                saga_queue=self.queues.queue(SAGA_QUEUE),
                review_queue=self.queues.queue(REVIEW_QUEUE),
                shipping_queue=self.queues.queue(SHIPPING_QUEUE)))
        self.bus = SupervisionBus(
            self, "Supervision", settings=settings, removal_policy=RemovalPolicy.DESTROY,
            state_machines={name: item.state_machine
                            for name, item in self.machines.workflows.items()})
        add_outputs(self, settings=settings, queues=self.queues, bus=self.bus,
                    machines=self.machines, table=self.claims)
