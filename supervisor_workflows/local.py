"""The supervision resources of the CDK app, made with plain API calls: for the local
emulator (demo, tests, benchmarks), where running ``cdk deploy`` would take a minute.

:func:`provision` creates what ``infra/`` deploys for the workflows: the EventBridge
bus, one rule per workflow (``SupervisionRequested`` whose ``detail.workflow`` names it
→ the state machine, input ``$.detail``), the claim table, the review queue, and the
two Standard state machines rendered from this package's definitions, and — given the
saga's queue — the status rule on the default bus (Step Functions' FAILED, TIMED_OUT and
ABORTED events of those machines → the saga's queue, as an envelope). It is
idempotent: what exists is reused, and the state machines get the definitions given.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridge.contracts import (
    DETAIL_TYPE_SUPERVISION_REQUESTED,
    EVENT_SOURCE_PREFIX,
    status_event_input_template,
    status_event_pattern,
)
from core_saga.emulator import create_sqs_queue

from ._asl import CLAIM_TABLE, REVIEW_QUEUE, SHIPPING_QUEUE, render_definition
from ._manual_review import ManualReviewTimings, manual_review_definition
from ._slow_shipping import SlowShippingTimings, slow_shipping_definition

ROLE_ARN = "arn:aws:iam::{account}:role/{prefix}supervision"
"""The (unchecked, on the emulator) role the state machines and rules name."""


@dataclass(frozen=True)
class SupervisionResources:
    """What :func:`provision` made; the workers' and the console's configuration."""

    bus_name: str
    claim_table: str
    review_queue_url: str
    manual_review_arn: str
    slow_shipping_arn: str

    @property
    def state_machines(self) -> dict[str, str]:
        """Workflow name → state machine ARN."""
        return {"ManualReview": self.manual_review_arn, "SlowShipping": self.slow_shipping_arn}


def event_pattern(workflow: str) -> dict[str, Any]:
    """The rule pattern for `workflow` (the same as the CDK app's): stepsaga sources
    only, ``SupervisionRequested``, the workflow."""
    return {"source": [{"prefix": EVENT_SOURCE_PREFIX}],
            "detail-type": [DETAIL_TYPE_SUPERVISION_REQUESTED],
            "detail": {"workflow": [workflow]}}


def provision(client: Callable[[str], Any], *, shipping_queue_url: str, prefix: str = "",
              bus_name: str = "stepsaga", account: str = "123456789012",
              manual_review: ManualReviewTimings | None = None,
              slow_shipping: SlowShippingTimings | None = None,
              max_receive_count: int = 10, visibility_timeout: int = 30,
              status_queue_url: str | None = None) -> SupervisionResources:
    """Create the supervision resources with `client` (service name → boto3 client:
    ``emulator.boto3_client``, or ``aws.client`` in tests). Names get `prefix`;
    `shipping_queue_url` is where SlowShipping sends its commands; the review queue gets
    a dead-letter queue after `max_receive_count` receives, and `visibility_timeout`.
    With `status_queue_url` (the saga's queue), the rule ``<prefix>supervision-status``
    on the default bus sends the machines' FAILED, TIMED_OUT and ABORTED status events
    there."""
    sqs, events = client("sqs"), client("events")
    dynamodb, sfn = client("dynamodb"), client("stepfunctions")
    bus = prefix + bus_name
    if not any(b["Name"] == bus for b in events.list_event_buses()["EventBuses"]):
        events.create_event_bus(Name=bus)
    table = prefix + "supervision-claims"
    if table not in dynamodb.list_tables()["TableNames"]:
        dynamodb.create_table(
            TableName=table, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "handoffId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "handoffId", "AttributeType": "S"}])
    review_url = create_sqs_queue(sqs, prefix + "review", max_receive_count=max_receive_count,
                                  visibility_timeout=visibility_timeout).url
    substitutions = {CLAIM_TABLE: table, REVIEW_QUEUE: review_url,
                     SHIPPING_QUEUE: shipping_queue_url}
    role = ROLE_ARN.format(account=account, prefix=prefix)
    definitions = {
        "ManualReview": manual_review_definition(manual_review or ManualReviewTimings()),
        "SlowShipping": slow_shipping_definition(slow_shipping or SlowShippingTimings()),
    }
    existing = {m["name"]: m["stateMachineArn"]
                for m in sfn.list_state_machines()["stateMachines"]}
    arns: dict[str, str] = {}
    for workflow, definition in definitions.items():
        name = prefix + workflow
        text = render_definition(definition, substitutions)
        if name in existing:
            arns[workflow] = existing[name]
            sfn.update_state_machine(stateMachineArn=existing[name], definition=text)
        else:
            arns[workflow] = sfn.create_state_machine(
                name=name, definition=text, roleArn=role, type="STANDARD")["stateMachineArn"]
        rule = f"{prefix}supervision-{workflow}"
        events.put_rule(Name=rule, EventBusName=bus, State="ENABLED",
                        EventPattern=json.dumps(event_pattern(workflow)))
        events.put_targets(Rule=rule, EventBusName=bus, Targets=[{
            "Id": workflow, "Arn": arns[workflow], "RoleArn": role, "InputPath": "$.detail"}])
    if status_queue_url is not None:
        put_status_rule(client, f"{prefix}supervision-status", list(arns.values()),
                        status_queue_url)
    return SupervisionResources(bus_name=bus, claim_table=table, review_queue_url=review_url,
                                manual_review_arn=arns["ManualReview"],
                                slow_shipping_arn=arns["SlowShipping"])


def put_status_rule(client: Callable[[str], Any], name: str, state_machine_arns: list[str],
                    queue_url: str) -> None:
    """The rule `name` on the default bus: Step Functions' status events of
    `state_machine_arns` that end without an outcome → the queue `queue_url`, each in
    an envelope (``bridge.contracts.status_event_input_template``)."""
    events, sqs = client("events"), client("sqs")
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    events.put_rule(Name=name, State="ENABLED",
                    EventPattern=json.dumps(status_event_pattern(state_machine_arns)))
    events.put_targets(Rule=name, Targets=[{
        "Id": "saga", "Arn": queue_arn, "InputTransformer": status_event_input_template()}])
