"""The synthesized template, checked with ``aws_cdk.assertions``: resources, their
properties, logging and tracing, IAM least privilege, outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template
from stepsaga_infra.bus import SUPERVISION_REQUESTED, event_pattern
from stepsaga_infra.outputs import (
    CLAIM_TABLE_OUTPUT,
    EVENT_BUS_ARN_OUTPUT,
    EVENT_BUS_NAME_OUTPUT,
    QUEUE_PREFIX_OUTPUT,
    RULE_DLQ_OUTPUT,
    dlq_url_output,
    queue_url_output,
    state_machine_output,
)
from stepsaga_infra.queues import QUEUE_NAMES
from stepsaga_infra.settings import InfraSettings
from stepsaga_infra.workflows import WILDCARD_ACTIONS, WORKFLOW_NAMES

from supervisor_workflows import (
    CLAIM_TABLE,
    REVIEW_QUEUE,
    SHIPPING_QUEUE,
    manual_review_definition,
    slow_shipping_definition,
)

from .conftest import Synthesized, synthesize

SETTINGS = InfraSettings()  # cdk.json's context is the defaults


@pytest.fixture(scope="module")
def template(synthesized: Synthesized) -> Template:
    return Template.from_json(synthesized.template)


def logical_id(synth: Synthesized, resource_type: str, **properties: Any) -> str:
    """The one resource of `resource_type` whose properties include `properties`."""
    found = [k for k, v in synth.of_type(resource_type).items()
             if all(v["Properties"].get(p) == want for p, want in properties.items())]
    assert len(found) == 1, (resource_type, properties, found)
    return found[0]


def queue_id(synth: Synthesized, name: str) -> str:
    return logical_id(synth, "AWS::SQS::Queue", QueueName=name)


def test_resource_counts(template: Template) -> None:
    template.resource_count_is("AWS::SQS::Queue", 2 * len(QUEUE_NAMES) + 1)
    template.resource_count_is("AWS::SQS::QueuePolicy", 2 * len(QUEUE_NAMES) + 1)
    template.resource_count_is("AWS::Events::EventBus", 1)
    template.resource_count_is("AWS::Events::Rule", len(WORKFLOW_NAMES))
    template.resource_count_is("AWS::StepFunctions::StateMachine", len(WORKFLOW_NAMES))
    template.resource_count_is("AWS::Logs::LogGroup", len(WORKFLOW_NAMES))
    template.resource_count_is("AWS::DynamoDB::Table", 1)
    template.resource_count_is("AWS::IAM::Role", 2 * len(WORKFLOW_NAMES))
    template.resource_count_is("AWS::Lambda::Function", 0)  # no custom resources


@pytest.mark.parametrize("name", QUEUE_NAMES)
def test_work_queue_has_dlq_redrive_and_encryption(synthesized: Synthesized,
                                                   template: Template, name: str) -> None:
    dlq = queue_id(synthesized, f"dev-{name}-dlq")
    template.has_resource("AWS::SQS::Queue", {
        "Properties": {
            "QueueName": f"dev-{name}",
            "SqsManagedSseEnabled": True,
            "VisibilityTimeout": SETTINGS.visibility_timeout_seconds,
            "MessageRetentionPeriod": SETTINGS.message_retention_days * 86400,
            "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [dlq, "Arn"]},
                              "maxReceiveCount": SETTINGS.max_receive_count},
        },
    })
    template.has_resource("AWS::SQS::Queue", {
        "Properties": {"QueueName": f"dev-{name}-dlq", "SqsManagedSseEnabled": True,
                       "MessageRetentionPeriod": SETTINGS.dlq_retention_days * 86400},
    })


def test_every_queue_is_encrypted_and_ssl_only(synthesized: Synthesized) -> None:
    queues = synthesized.of_type("AWS::SQS::Queue")
    policies = synthesized.of_type("AWS::SQS::QueuePolicy").values()
    for logical, queue in queues.items():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True, logical
        statements = [s for p in policies if {"Ref": logical} in p["Properties"]["Queues"]
                      for s in p["Properties"]["PolicyDocument"]["Statement"]]
        assert {"Action": "sqs:*", "Effect": "Deny", "Principal": {"AWS": "*"},
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                "Resource": {"Fn::GetAtt": [logical, "Arn"]}} in statements, logical


def test_claim_table(template: Template) -> None:
    template.has_resource("AWS::DynamoDB::Table", {
        "Properties": {
            "TableName": "stepsaga-dev-handoff-claims",
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "handoffId", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "handoffId", "AttributeType": "S"}],
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {"SSEEnabled": True},
        },
        "DeletionPolicy": "Retain",  # cdk.json's default: keep the data
    })


@pytest.mark.parametrize("workflow", WORKFLOW_NAMES)
def test_state_machine_logging_tracing_and_definition(synthesized: Synthesized,
                                                      template: Template,
                                                      workflow: str) -> None:
    log_group = logical_id(synthesized, "AWS::Logs::LogGroup",
                           LogGroupName=f"/aws/vendedlogs/states/stepsaga-dev-{workflow}")
    template.has_resource_properties("AWS::Logs::LogGroup", {
        "LogGroupName": f"/aws/vendedlogs/states/stepsaga-dev-{workflow}",
        "RetentionInDays": SETTINGS.log_retention_days,
    })
    machine = synthesized.resources[logical_id(
        synthesized, "AWS::StepFunctions::StateMachine",
        StateMachineName=f"stepsaga-dev-{workflow}")]["Properties"]
    assert machine["StateMachineType"] == "STANDARD"
    assert machine["LoggingConfiguration"] == {
        "Destinations": [{"CloudWatchLogsLogGroup": {
            "LogGroupArn": {"Fn::GetAtt": [log_group, "Arn"]}}}],
        "IncludeExecutionData": True, "Level": "ALL"}
    assert machine["TracingConfiguration"] == {"Enabled": True}
    # one source of truth: the definition is supervisor_workflows' own, placeholders kept
    expected = (manual_review_definition(SETTINGS.manual_review_timings())
                if workflow == "ManualReview"
                else slow_shipping_definition(SETTINGS.slow_shipping_timings()))
    assert json.loads(machine["DefinitionString"]) == expected
    table = logical_id(synthesized, "AWS::DynamoDB::Table")
    queue = queue_id(synthesized, "dev-review" if workflow == "ManualReview"
                     else "dev-shipping")
    placeholder = REVIEW_QUEUE if workflow == "ManualReview" else SHIPPING_QUEUE
    assert machine["DefinitionSubstitutions"] == {CLAIM_TABLE: {"Ref": table},
                                                  placeholder: {"Ref": queue}}


@pytest.mark.parametrize("workflow", WORKFLOW_NAMES)
def test_rule_starts_its_machine_with_detail(synthesized: Synthesized, workflow: str) -> None:
    machine = logical_id(synthesized, "AWS::StepFunctions::StateMachine",
                         StateMachineName=f"stepsaga-dev-{workflow}")
    bus = logical_id(synthesized, "AWS::Events::EventBus", Name="stepsaga-dev")
    dlq = queue_id(synthesized, "dev-supervision-events-dlq")
    rule = synthesized.resources[logical_id(synthesized, "AWS::Events::Rule",
                                            Name=f"stepsaga-dev-{workflow}")]["Properties"]
    assert rule["EventBusName"] == {"Ref": bus}
    assert rule["EventPattern"] == event_pattern(workflow) == {
        "detail-type": [SUPERVISION_REQUESTED], "detail": {"workflow": [workflow]}}
    assert rule["State"] == "ENABLED"
    [target] = rule["Targets"]
    assert target["Arn"] == {"Ref": machine}
    assert target["InputPath"] == "$.detail"
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq, "Arn"]}}
    assert target["RetryPolicy"] == {
        "MaximumRetryAttempts": SETTINGS.event_retry_attempts,
        "MaximumEventAgeInSeconds": SETTINGS.event_max_age_hours * 3600}
    role = target["RoleArn"]["Fn::GetAtt"][0]
    assert statements_of_role(synthesized, role) == [
        {"Action": "states:StartExecution", "Effect": "Allow", "Resource": {"Ref": machine}}]
    # the DLQ lets this rule (and nothing else) send to it
    [policy] = [p for p in synthesized.of_type("AWS::SQS::QueuePolicy").values()
                if {"Ref": dlq} in p["Properties"]["Queues"]]
    rule_id = logical_id(synthesized, "AWS::Events::Rule", Name=f"stepsaga-dev-{workflow}")
    assert any(s.get("Principal") == {"Service": "events.amazonaws.com"}
               and s["Action"] == "sqs:SendMessage"
               and s["Condition"] == {"ArnEquals": {"aws:SourceArn": {
                   "Fn::GetAtt": [rule_id, "Arn"]}}}
               for s in policy["Properties"]["PolicyDocument"]["Statement"])


def statements_of_role(synth: Synthesized, role: str) -> list[dict[str, Any]]:
    """Every statement of the identity policies attached to `role` (Sid dropped)."""
    found = []
    for policy in synth.of_type("AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                found.append({k: v for k, v in statement.items() if k != "Sid"})
    inline = synth.resources[role]["Properties"].get("Policies", [])
    for policy in inline:
        found.extend(policy["PolicyDocument"]["Statement"])
    return found


@pytest.mark.parametrize("workflow", WORKFLOW_NAMES)
def test_state_machine_role_is_least_privilege(synthesized: Synthesized, workflow: str) -> None:
    machine = synthesized.resources[logical_id(
        synthesized, "AWS::StepFunctions::StateMachine",
        StateMachineName=f"stepsaga-dev-{workflow}")]["Properties"]
    role = machine["RoleArn"]["Fn::GetAtt"][0]
    trust = synthesized.resources[role]["Properties"]["AssumeRolePolicyDocument"]
    assert trust["Statement"] == [{
        "Action": "sts:AssumeRole", "Effect": "Allow",
        "Principal": {"Service": "states.amazonaws.com"},
        "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}}]
    table = logical_id(synthesized, "AWS::DynamoDB::Table")
    own_queue = "dev-review" if workflow == "ManualReview" else "dev-shipping"
    scoped = [s for s in statements_of_role(synthesized, role) if s["Resource"] != "*"]
    assert scoped == [
        {"Action": "dynamodb:PutItem", "Effect": "Allow",
         "Resource": {"Fn::GetAtt": [table, "Arn"]}},
        {"Action": "sqs:SendMessage", "Effect": "Allow", "Resource": [
            {"Fn::GetAtt": [queue_id(synthesized, "dev-order-saga"), "Arn"]},
            {"Fn::GetAtt": [queue_id(synthesized, own_queue), "Arn"]}]},
    ]
    wildcard = [s for s in statements_of_role(synthesized, role) if s["Resource"] == "*"]
    assert {a for s in wildcard for a in _as_list(s["Action"])} == WILDCARD_ACTIONS


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _references(value: Any) -> set[str]:
    """The logical ids a value refers to with Ref / Fn::GetAtt."""
    if isinstance(value, dict):
        if "Ref" in value:
            return {value["Ref"]}
        if "Fn::GetAtt" in value:
            return {value["Fn::GetAtt"][0]}
        return set().union(*(_references(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_references(v) for v in value)) if value else set()
    return set()


def test_no_wildcard_actions_and_resources_scoped_to_the_stack(synthesized: Synthesized
                                                               ) -> None:
    """No Allow anywhere has a ``*`` in an action; identity policies name resources of
    this template, except the actions AWS only grants on ``*`` (log delivery, X-Ray),
    which cdk-nag acknowledges with a reason (see test_lint)."""
    documents: list[tuple[str, dict[str, Any]]] = []
    for logical, policy in synthesized.of_type("AWS::IAM::Policy").items():
        documents.append((logical, policy["Properties"]["PolicyDocument"]))
    for logical, role in synthesized.of_type("AWS::IAM::Role").items():
        assert "ManagedPolicyArns" not in role["Properties"], logical
        documents.extend((logical, p["PolicyDocument"])
                         for p in role["Properties"].get("Policies", []))
    assert documents
    for logical, document in documents:
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow", logical
            actions = _as_list(statement["Action"])
            assert not [a for a in actions if "*" in a], (logical, actions)
            for resource in _as_list(statement["Resource"]):
                if resource == "*":
                    assert set(actions) <= WILDCARD_ACTIONS, (logical, actions)
                else:
                    refs = _references(resource)
                    assert refs and refs <= set(synthesized.resources), (logical, resource)
    for logical, policy in synthesized.of_type("AWS::SQS::QueuePolicy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Allow":
                assert not [a for a in _as_list(statement["Action"]) if "*" in a], logical


def test_outputs(synthesized: Synthesized, template: Template) -> None:
    outputs = synthesized.template["Outputs"]
    for name in QUEUE_NAMES:
        assert outputs[queue_url_output(name)]["Value"] == {
            "Ref": queue_id(synthesized, f"dev-{name}")}
        assert outputs[dlq_url_output(name)]["Value"] == {
            "Ref": queue_id(synthesized, f"dev-{name}-dlq")}
    assert outputs[RULE_DLQ_OUTPUT]["Value"] == {
        "Ref": queue_id(synthesized, "dev-supervision-events-dlq")}
    assert outputs[QUEUE_PREFIX_OUTPUT]["Value"] == "dev-"
    bus = logical_id(synthesized, "AWS::Events::EventBus", Name="stepsaga-dev")
    assert outputs[EVENT_BUS_NAME_OUTPUT]["Value"] == {"Ref": bus}
    assert outputs[EVENT_BUS_ARN_OUTPUT]["Value"] == {"Fn::GetAtt": [bus, "Arn"]}
    for workflow in WORKFLOW_NAMES:
        machine = logical_id(synthesized, "AWS::StepFunctions::StateMachine",
                             StateMachineName=f"stepsaga-dev-{workflow}")
        assert outputs[state_machine_output(workflow)]["Value"] == {"Ref": machine}
    assert outputs[CLAIM_TABLE_OUTPUT]["Value"] == {
        "Ref": logical_id(synthesized, "AWS::DynamoDB::Table")}
    template.has_output("*", {"Description": Match.any_value()})


def test_tags_on_resources(template: Template) -> None:
    template.has_resource_properties("AWS::StepFunctions::StateMachine", {
        "Tags": Match.array_with([{"Key": "project", "Value": "stepsaga"},
                                  {"Key": "stage", "Value": "dev"}])})


def test_context_changes_the_stack(tmp_path: Path) -> None:
    """A second stage with its own retention, timeouts and removal policy."""
    synth = synthesize(tmp_path, {
        "stepsaga:stage": "prod", "stepsaga:logRetentionDays": "90",
        "stepsaga:reviewTimeoutSeconds": "3600", "stepsaga:shippingDeadlineSeconds": "7200",
        "stepsaga:removalPolicy": "destroy", "stepsaga:maxReceiveCount": "3",
        "stepsaga:tags": '{"cost-center": "42"}'}, nag=False)
    assert synth.stack.stack_name == "stepsaga-prod"
    template = Template.from_json(synth.template)
    template.has_resource_properties("AWS::SQS::Queue", {
        "QueueName": "prod-order-saga",
        "RedrivePolicy": Match.object_like({"maxReceiveCount": 3})})
    template.has_resource_properties("AWS::Logs::LogGroup", {
        "LogGroupName": "/aws/vendedlogs/states/stepsaga-prod-ManualReview",
        "RetentionInDays": 90})
    template.has_resource("AWS::DynamoDB::Table", {
        "Properties": Match.object_like({"TableName": "stepsaga-prod-handoff-claims"}),
        "DeletionPolicy": "Delete"})
    template.has_resource_properties("AWS::Events::EventBus", {
        "Name": "stepsaga-prod",
        "Tags": Match.array_with([{"Key": "cost-center", "Value": "42"}])})
    settings = InfraSettings(review_timeout_seconds=3600, shipping_deadline_seconds=7200)
    definitions = {m["Properties"]["StateMachineName"]: json.loads(
        m["Properties"]["DefinitionString"])
        for m in synth.of_type("AWS::StepFunctions::StateMachine").values()}
    assert definitions["stepsaga-prod-ManualReview"] == manual_review_definition(
        settings.manual_review_timings())
    assert definitions["stepsaga-prod-SlowShipping"] == slow_shipping_definition(
        settings.slow_shipping_timings())
    assert definitions["stepsaga-prod-ManualReview"]["States"]["AwaitReview"][
        "TimeoutSeconds"] == 3600
