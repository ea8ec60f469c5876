"""The one stack of the app: key, queues, claim table, state machines, bus and rules,
the workers' policies, the schema registry, the alarms and the dashboard, and the
outputs.

Each part is a construct of its own module, built here in dependency order; a new part
(an archive, alarms, a dashboard) is one more construct that takes what it needs from
the attributes below.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy, Stack, Tags
from constructs import Construct

from .bus import SupervisionBus
from .encryption import StackKey
from .monitoring import Monitoring, Watched
from .outputs import add_outputs
from .queues import QUEUE_NAMES, REVIEW_QUEUE, SAGA_QUEUE, SHIPPING_QUEUE, MessagingQueues
from .schemas import SchemaRegistry
from .settings import InfraSettings
from .table import ClaimTable
from .workers import WorkerAccess
from .workflows import MANUAL_REVIEW, SupervisorStateMachines, WorkflowResources


class StepsagaStack(Stack):
    """Everything one stage of stepsaga needs on AWS besides the workers and their
    database."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: InfraSettings,
                 **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        # One policy for every resource that holds data (messages, claims, logs, a key):
        # `retain` keeps them through `cdk destroy`; the next deploy adopts them.
        self.removal_policy = (RemovalPolicy.DESTROY if settings.removal_policy == "destroy"
                               else RemovalPolicy.RETAIN)
        Tags.of(self).add("project", "stepsaga")
        Tags.of(self).add("stage", settings.stage)
        for key, value in settings.tags.items():
            Tags.of(self).add(key, value)

        self.key = StackKey(self, "Encryption", settings=settings,
                            removal_policy=self.removal_policy).key
        self.queues = MessagingQueues(self, "Queues", settings=settings,
                                      removal_policy=self.removal_policy, key=self.key)
        self.claims = ClaimTable(self, "Claims", settings=settings,
                                 removal_policy=self.removal_policy, key=self.key)
        self.machines = SupervisorStateMachines(
            self, "Workflows", settings=settings, removal_policy=self.removal_policy,
            resources=WorkflowResources(
                table_name=self.claims.table.table_name,
                table_arn=self.claims.table.table_arn,
                saga_queue=self.queues.queue(SAGA_QUEUE),
                review_queue=self.queues.queue(REVIEW_QUEUE),
                shipping_queue=self.queues.queue(SHIPPING_QUEUE),
                key=self.key))
        state_machines = {name: item.state_machine
                          for name, item in self.machines.workflows.items()}
        self.bus = SupervisionBus(
            self, "Supervision", settings=settings, removal_policy=self.removal_policy,
            state_machines=state_machines, saga_queue=self.queues.queue(SAGA_QUEUE),
            key=self.key)
        # The workers host the review consumer too (the reference app's worker does):
        # every queue is theirs.
        worker_queues = [queue for name in QUEUE_NAMES
                         for queue in (self.queues.pairs[name].queue,
                                       self.queues.pairs[name].dlq)]
        review = self.queues.pairs[REVIEW_QUEUE]
        self.access = WorkerAccess(
            self, "Access", settings=settings, worker_queues=worker_queues,
            review_queues=[review.queue, review.dlq], bus=self.bus.bus,
            machines=state_machines, review_machine=MANUAL_REVIEW, key=self.key)
        self.schemas = SchemaRegistry(self, "Schemas", settings=settings)
        self.monitoring = Monitoring(self, "Monitoring", settings=settings, key=self.key,
                                     watched=Watched(
                                         queues=self.queues.pairs,
                                         rule_dlq=self.bus.dead_letter_queue,
                                         state_machines=state_machines,
                                         rules=self.bus.rules,
                                         bus_name=self.bus.bus.event_bus_name))
        add_outputs(self, settings=settings, queues=self.queues, bus=self.bus,
                    machines=self.machines, table=self.claims, access=self.access,
                    schemas=self.schemas, key=self.key, monitoring=self.monitoring)
