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
    CONSOLE_POLICY_OUTPUT,
    EVENT_BUS_ARN_OUTPUT,
    EVENT_BUS_NAME_OUTPUT,
    KEY_OUTPUT,
    QUEUE_PREFIX_OUTPUT,
    REGISTRY_OUTPUT,
    RULE_DLQ_OUTPUT,
    WORKER_ROLE_OUTPUT,
    WORKERS_POLICY_OUTPUT,
    dlq_url_output,
    queue_url_output,
    state_machine_output,
)
from stepsaga_infra.queues import QUEUE_NAMES
from stepsaga_infra.queues import REVIEW_QUEUE as REVIEW_QUEUE_NAME
from stepsaga_infra.schemas import schema_name, to_draft4
from stepsaga_infra.settings import STAGES_DIR, InfraSettings
from stepsaga_infra.workers import (
    EXECUTION_READ_ACTIONS,
    EXECUTION_TRACE_ACTIONS,
    KEY_ACTIONS,
    QUEUE_ACTIONS,
    TASK_ANSWER_ACTIONS,
)
from stepsaga_infra.workflows import WILDCARD_ACTIONS, WORKFLOW_NAMES

from bridge.contracts import (
    CONTRACTS,
    UNFINISHED_STATUSES,
    contract_schema,
    status_event_input_template,
)
from supervisor_workflows import (
    CLAIM_TABLE,
    REVIEW_QUEUE,
    SHIPPING_QUEUE,
    manual_review_definition,
    slow_shipping_definition,
)
from supervisor_workflows.local import event_pattern as local_event_pattern

from .conftest import Synthesized, synthesize

SETTINGS = InfraSettings.from_file(STAGES_DIR / "dev.json")  # what `cdk synth` builds
Q = SETTINGS.queue_prefix  # "stepsaga-dev-"


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
    template.resource_count_is("AWS::Events::Rule", len(WORKFLOW_NAMES) + 1)  # + status
    template.resource_count_is("AWS::Events::Archive", 2)
    template.resource_count_is("AWS::StepFunctions::StateMachine", len(WORKFLOW_NAMES))
    template.resource_count_is("AWS::Logs::LogGroup", len(WORKFLOW_NAMES))
    template.resource_count_is("AWS::DynamoDB::Table", 1)
    template.resource_count_is("AWS::IAM::Role", 2 * len(WORKFLOW_NAMES))
    # every permission is a managed policy (NIST 800-53 IAMNoInlinePolicy): the two
    # machines', the two rule targets', the workers' and the console's
    template.resource_count_is("AWS::IAM::ManagedPolicy", 2 * len(WORKFLOW_NAMES) + 2)
    template.resource_count_is("AWS::IAM::Policy", 0)
    template.resource_count_is("AWS::KMS::Key", 0)  # dev: AWS-managed encryption
    template.resource_count_is("AWS::EventSchemas::Registry", 1)
    template.resource_count_is("AWS::EventSchemas::Schema", len(CONTRACTS))
    template.resource_count_is("AWS::Lambda::Function", 0)  # no custom resources


@pytest.mark.parametrize("name", QUEUE_NAMES)
def test_work_queue_has_dlq_redrive_and_encryption(synthesized: Synthesized,
                                                   template: Template, name: str) -> None:
    dlq = queue_id(synthesized, f"{Q}{name}-dlq")
    template.has_resource("AWS::SQS::Queue", {
        "Properties": {
            "QueueName": f"{Q}{name}",
            "SqsManagedSseEnabled": True,
            "VisibilityTimeout": SETTINGS.visibility_timeout_seconds,
            "MessageRetentionPeriod": SETTINGS.message_retention_days * 86400,
            "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [dlq, "Arn"]},
                              "maxReceiveCount": SETTINGS.max_receive_count},
        },
    })
    template.has_resource("AWS::SQS::Queue", {
        "Properties": {"QueueName": f"{Q}{name}-dlq", "SqsManagedSseEnabled": True,
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
        "DeletionPolicy": "Retain",  # the default: keep the data
    })


def test_every_stateful_resource_follows_the_removal_policy(synthesized: Synthesized) -> None:
    """Queues and DLQs included: with `retain` nothing that holds data goes with
    `cdk destroy`; the next deploy adopts it (--import-existing-resources)."""
    stateful = ("AWS::SQS::Queue", "AWS::DynamoDB::Table", "AWS::Logs::LogGroup",
                "AWS::KMS::Key")
    found = {k: v for k, v in synthesized.resources.items() if v["Type"] in stateful}
    assert len(found) == 2 * len(QUEUE_NAMES) + 1 + 1 + len(WORKFLOW_NAMES)
    for logical, resource in found.items():
        assert resource["DeletionPolicy"] == "Retain", logical
        assert resource["UpdateReplacePolicy"] == "Retain", logical


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
        "IncludeExecutionData": SETTINGS.log_execution_data, "Level": "ALL"}
    assert machine["TracingConfiguration"] == {"Enabled": True}
    # one source of truth: the definition is supervisor_workflows' own, placeholders kept
    expected = (manual_review_definition(SETTINGS.manual_review_timings())
                if workflow == "ManualReview"
                else slow_shipping_definition(SETTINGS.slow_shipping_timings()))
    assert json.loads(machine["DefinitionString"]) == expected
    table = logical_id(synthesized, "AWS::DynamoDB::Table")
    queue = queue_id(synthesized, f"{Q}review" if workflow == "ManualReview"
                     else f"{Q}shipping")
    placeholder = REVIEW_QUEUE if workflow == "ManualReview" else SHIPPING_QUEUE
    assert machine["DefinitionSubstitutions"] == {CLAIM_TABLE: {"Ref": table},
                                                  placeholder: {"Ref": queue}}


@pytest.mark.parametrize("workflow", WORKFLOW_NAMES)
def test_rule_starts_its_machine_with_detail(synthesized: Synthesized, workflow: str) -> None:
    machine = logical_id(synthesized, "AWS::StepFunctions::StateMachine",
                         StateMachineName=f"stepsaga-dev-{workflow}")
    bus = logical_id(synthesized, "AWS::Events::EventBus", Name="stepsaga-dev")
    dlq = queue_id(synthesized, f"{Q}supervision-events-dlq")
    rule = synthesized.resources[logical_id(synthesized, "AWS::Events::Rule",
                                            Name=f"stepsaga-dev-{workflow}")]["Properties"]
    assert rule["EventBusName"] == {"Ref": bus}
    assert rule["EventPattern"] == event_pattern(workflow) == {
        "source": [{"prefix": "stepsaga."}],  # only stepsaga sagas start workflows
        "detail-type": [SUPERVISION_REQUESTED], "detail": {"workflow": [workflow]}}
    # the emulator's hand-provisioned rules (demo, tests) match the same events
    assert local_event_pattern(workflow) == rule["EventPattern"]
    assert rule["State"] == "ENABLED"
    [target] = rule["Targets"]
    assert target["Arn"] == {"Ref": machine}
    assert target["InputPath"] == "$.detail"
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq, "Arn"]}}
    assert target["RetryPolicy"] == {
        "MaximumRetryAttempts": SETTINGS.event_retry_attempts,
        "MaximumEventAgeInSeconds": SETTINGS.event_max_age_seconds}
    role = target["RoleArn"]["Fn::GetAtt"][0]
    assert statements_of_role(synthesized, role) == [
        {"Action": "states:StartExecution", "Effect": "Allow", "Resource": {"Ref": machine}}]
    trust = synthesized.resources[role]["Properties"]["AssumeRolePolicyDocument"]
    assert trust["Statement"] == [{
        "Action": "sts:AssumeRole", "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                      "ArnEquals": {"aws:SourceArn": {"Fn::Join": ["", [
                          "arn:", {"Ref": "AWS::Partition"}, ":events:",
                          {"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"},
                          f":rule/stepsaga-dev/stepsaga-dev-{workflow}"]]}}}}]
    # the DLQ lets this rule (and nothing else) send to it
    [policy] = [p for p in synthesized.of_type("AWS::SQS::QueuePolicy").values()
                if {"Ref": dlq} in p["Properties"]["Queues"]]
    rule_id = logical_id(synthesized, "AWS::Events::Rule", Name=f"stepsaga-dev-{workflow}")
    assert any(s.get("Principal") == {"Service": "events.amazonaws.com"}
               and s["Action"] == "sqs:SendMessage"
               and s["Condition"] == {"ArnEquals": {"aws:SourceArn": {
                   "Fn::GetAtt": [rule_id, "Arn"]}}}
               for s in policy["Properties"]["PolicyDocument"]["Statement"])


def test_the_status_rule_brings_unfinished_executions_to_the_saga(
        synthesized: Synthesized) -> None:
    """Step Functions' status events (default bus) of the two machines, FAILED, TIMED_OUT
    or ABORTED, go to the saga's queue in an envelope, with the stage's retry window."""
    rule_id = logical_id(synthesized, "AWS::Events::Rule",
                         Name="stepsaga-dev-supervision-status")
    rule = synthesized.resources[rule_id]["Properties"]
    assert "EventBusName" not in rule  # the default bus: where Step Functions puts them
    machines = [{"Ref": logical_id(synthesized, "AWS::StepFunctions::StateMachine",
                                   StateMachineName=f"stepsaga-dev-{w}")}
                for w in ("ManualReview", "SlowShipping")]
    assert rule["EventPattern"] == {
        "source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"status": ["FAILED", "TIMED_OUT", "ABORTED"], "stateMachineArn": machines}}
    assert rule["EventPattern"]["detail"]["status"] == list(UNFINISHED_STATUSES)
    saga_queue = queue_id(synthesized, f"{Q}order-saga")
    dlq = queue_id(synthesized, f"{Q}supervision-events-dlq")
    [target] = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [saga_queue, "Arn"]}
    assert target["InputTransformer"] == status_event_input_template()
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq, "Arn"]}}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 24,
                                     "MaximumEventAgeInSeconds": 3600}  # about an hour
    # the saga's queue lets this rule (and nothing else from EventBridge) send to it
    [policy] = [p for p in synthesized.of_type("AWS::SQS::QueuePolicy").values()
                if {"Ref": saga_queue} in p["Properties"]["Queues"]]
    assert [s["Condition"] for s in policy["Properties"]["PolicyDocument"]["Statement"]
            if s.get("Principal") == {"Service": "events.amazonaws.com"}] == [
        {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}}]


def test_the_archives_keep_the_events_for_replay(synthesized: Synthesized) -> None:
    bus = logical_id(synthesized, "AWS::Events::EventBus", Name="stepsaga-dev")
    archives = {a["Properties"]["ArchiveName"]: a["Properties"]
                for a in synthesized.of_type("AWS::Events::Archive").values()}
    assert sorted(archives) == ["stepsaga-dev-bus", "stepsaga-dev-status"]
    everything = archives["stepsaga-dev-bus"]
    assert everything["SourceArn"] == {"Fn::GetAtt": [bus, "Arn"]}
    assert everything["EventPattern"] == {"account": [{"Ref": "AWS::AccountId"}]}
    assert everything["RetentionDays"] == SETTINGS.event_archive_retention_days == 30
    status = archives["stepsaga-dev-status"]
    assert status["SourceArn"]["Fn::Join"][1][-1] == ":event-bus/default"
    rule = synthesized.resources[logical_id(synthesized, "AWS::Events::Rule",
                                            Name="stepsaga-dev-supervision-status")]
    assert status["EventPattern"] == rule["Properties"]["EventPattern"]


def test_the_retry_window_and_the_archive_retention_are_stage_settings(
        tmp_path: Path) -> None:
    path = tmp_path / "qa.json"
    path.write_text(json.dumps({"stage": "qa", "eventMaxAgeSeconds": 600,
                                "eventRetryAttempts": 5, "eventArchiveRetentionDays": 0}))
    synth = synthesize(tmp_path / "out", {"stepsaga:settingsFile": str(path)}, nag=False)
    rules = synth.of_type("AWS::Events::Rule").values()
    assert {json.dumps(t["RetryPolicy"], sort_keys=True) for r in rules
            for t in r["Properties"]["Targets"]} == {json.dumps(
                {"MaximumEventAgeInSeconds": 600, "MaximumRetryAttempts": 5}, sort_keys=True)}
    for archive in synth.of_type("AWS::Events::Archive").values():
        assert archive["Properties"].get("RetentionDays", 0) == 0  # 0: kept for ever


def statements_of_role(synth: Synthesized, role: str) -> list[dict[str, Any]]:
    """Every statement of the policies attached to `role` (Sid dropped)."""
    found = []
    attached = synth.resources[role]["Properties"].get("ManagedPolicyArns", [])
    for ref in attached:
        policy = synth.resources[ref["Ref"]]
        assert policy["Type"] == "AWS::IAM::ManagedPolicy"
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            found.append({k: v for k, v in statement.items() if k != "Sid"})
    assert "Policies" not in synth.resources[role]["Properties"]  # nothing inline
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
        "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                      "ArnLike": {"aws:SourceArn": {"Fn::Join": ["", [
                          "arn:", {"Ref": "AWS::Partition"}, ":states:",
                          {"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"},
                          f":stateMachine:stepsaga-dev-{workflow}"]]}}}}]
    table = logical_id(synthesized, "AWS::DynamoDB::Table")
    own_queue = f"{Q}review" if workflow == "ManualReview" else f"{Q}shipping"
    scoped = [s for s in statements_of_role(synthesized, role) if s["Resource"] != "*"]
    assert scoped == [
        {"Action": "dynamodb:PutItem", "Effect": "Allow",
         "Resource": {"Fn::GetAtt": [table, "Arn"]}},
        {"Action": "sqs:SendMessage", "Effect": "Allow", "Resource": [
            {"Fn::GetAtt": [queue_id(synthesized, f"{Q}order-saga"), "Arn"]},
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
    for logical, policy in synthesized.of_type("AWS::IAM::ManagedPolicy").items():
        documents.append((logical, policy["Properties"]["PolicyDocument"]))
    for logical, role in synthesized.of_type("AWS::IAM::Role").items():
        assert "Policies" not in role["Properties"], logical
        for arn in role["Properties"].get("ManagedPolicyArns", []):  # only the stack's own
            assert synthesized.resources[arn["Ref"]]["Type"] == "AWS::IAM::ManagedPolicy"
    assert documents
    for logical, document in documents:
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow", logical
            actions = _as_list(statement["Action"])
            assert not [a for a in actions if "*" in a], (logical, actions)
            for resource in _as_list(statement["Resource"]):
                if resource == "*":
                    assert set(actions) <= WILDCARD_ACTIONS, (logical, actions)
                elif not _is_execution_pattern(resource):
                    refs = _references(resource)
                    assert refs and refs <= set(synthesized.resources), (logical, resource)
    for logical, policy in synthesized.of_type("AWS::SQS::QueuePolicy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Allow":
                assert not [a for a in _as_list(statement["Action"]) if "*" in a], logical


def _is_execution_pattern(resource: Any) -> bool:
    """The console reads executions by pattern: arn:…:execution:stepsaga-dev-<Name>:*."""
    parts = resource.get("Fn::Join", ["", []])[1] if isinstance(resource, dict) else []
    return bool(parts) and isinstance(parts[-1], str) and any(
        parts[-1] == f":execution:stepsaga-dev-{w}:*" for w in WORKFLOW_NAMES)


def _policy(synth: Synthesized, name: str) -> dict[str, Any]:
    [found] = [p["Properties"] for p in synth.of_type("AWS::IAM::ManagedPolicy").values()
               if p["Properties"].get("ManagedPolicyName") == name]
    return found


def test_the_workers_policy_is_exactly_what_the_workers_call(synthesized: Synthesized
                                                             ) -> None:
    statements = {s["Sid"]: s for s in _policy(synthesized, "stepsaga-dev-workers")[
        "PolicyDocument"]["Statement"]}
    assert set(statements) == {"WorkQueues", "HandOffs", "AnswerWorkflowTasks",
                               "TraceExecutions"}
    queues = statements["WorkQueues"]
    assert sorted(queues["Action"]) == sorted(QUEUE_ACTIONS)
    # every queue, the review queue's too: the workers host the review consumer
    expected = [{"Fn::GetAtt": [queue_id(synthesized, f"{Q}{name}{suffix}"), "Arn"]}
                for name in QUEUE_NAMES for suffix in ("", "-dlq")]
    assert REVIEW_QUEUE_NAME in QUEUE_NAMES
    assert sorted(map(json.dumps, queues["Resource"])) == sorted(map(json.dumps, expected))
    bus = logical_id(synthesized, "AWS::Events::EventBus", Name="stepsaga-dev")
    assert statements["HandOffs"] == {
        "Sid": "HandOffs", "Effect": "Allow", "Action": "events:PutEvents",
        "Resource": {"Fn::GetAtt": [bus, "Arn"]},
        "Condition": {"StringLike": {"events:source": "stepsaga.*"}}}
    machines = [{"Ref": logical_id(synthesized, "AWS::StepFunctions::StateMachine",
                                   StateMachineName=f"stepsaga-dev-{w}")}
                for w in WORKFLOW_NAMES]
    answers = statements["AnswerWorkflowTasks"]
    assert sorted(answers["Action"]) == sorted(TASK_ANSWER_ACTIONS)
    assert answers["Resource"] == machines
    # with tracing on, the execution's span is read from its history (bridge's sink)
    traced = statements["TraceExecutions"]
    assert _as_list(traced["Action"]) == list(EXECUTION_TRACE_ACTIONS)
    assert len(traced["Resource"]) == len(WORKFLOW_NAMES)
    assert all(_is_execution_pattern(r) for r in traced["Resource"])


def test_the_console_policy(synthesized: Synthesized) -> None:
    statements = {s["Sid"]: s for s in _policy(synthesized, "stepsaga-dev-console")[
        "PolicyDocument"]["Statement"]}
    assert set(statements) == {"ReviewQueue", "AnswerReviews", "ReadExecutions"}
    assert sorted(map(json.dumps, statements["ReviewQueue"]["Resource"])) == sorted(
        json.dumps({"Fn::GetAtt": [queue_id(synthesized, f"{Q}review{s}"), "Arn"]})
        for s in ("", "-dlq"))
    assert statements["AnswerReviews"]["Resource"] == {"Ref": logical_id(
        synthesized, "AWS::StepFunctions::StateMachine",
        StateMachineName="stepsaga-dev-ManualReview")}
    assert sorted(statements["ReadExecutions"]["Action"]) == sorted(EXECUTION_READ_ACTIONS)
    assert all(_is_execution_pattern(r) for r in statements["ReadExecutions"]["Resource"])


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.__name__)
def test_every_contract_is_in_the_schema_registry(synthesized: Synthesized,
                                                  contract: type[Any]) -> None:
    registry = logical_id(synthesized, "AWS::EventSchemas::Registry")
    assert synthesized.resources[registry]["Properties"]["RegistryName"] == "stepsaga-dev"
    [schema] = [s for s in synthesized.of_type("AWS::EventSchemas::Schema").values()
                if s["Properties"]["SchemaName"] == schema_name(contract)]
    assert schema["Properties"]["Type"] == "JSONSchemaDraft4"
    assert schema["Properties"]["RegistryName"] == "stepsaga-dev"
    assert registry in schema["DependsOn"]
    assert json.loads(schema["Properties"]["Content"]) == json.loads(json.dumps(
        to_draft4(contract_schema(contract))))


def test_draft4_translation() -> None:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "urn:x",
              "$defs": {"A": {"const": 1}}, "properties": {
                  "a": {"$ref": "#/$defs/A"}, "n": {"exclusiveMinimum": 0}},
              "if": {"properties": {"k": {"const": "x"}}}, "then": {"required": ["n"]}}
    assert to_draft4(schema) == {
        "$schema": "http://json-schema.org/draft-04/schema#", "id": "urn:x",
        "definitions": {"A": {"enum": [1]}}, "properties": {
            "a": {"$ref": "#/definitions/A"},
            "n": {"minimum": 0, "exclusiveMinimum": True}},
        "allOf": [{"anyOf": [{"not": {"properties": {"k": {"enum": ["x"]}}}},
                             {"required": ["n"]}]}]}


def test_outputs(synthesized: Synthesized, template: Template) -> None:
    outputs = synthesized.template["Outputs"]
    for name in QUEUE_NAMES:
        assert outputs[queue_url_output(name)]["Value"] == {
            "Ref": queue_id(synthesized, f"{Q}{name}")}
        assert outputs[dlq_url_output(name)]["Value"] == {
            "Ref": queue_id(synthesized, f"{Q}{name}-dlq")}
    assert outputs[RULE_DLQ_OUTPUT]["Value"] == {
        "Ref": queue_id(synthesized, f"{Q}supervision-events-dlq")}
    assert outputs[QUEUE_PREFIX_OUTPUT]["Value"] == "stepsaga-dev-"
    bus = logical_id(synthesized, "AWS::Events::EventBus", Name="stepsaga-dev")
    assert outputs[EVENT_BUS_NAME_OUTPUT]["Value"] == {"Ref": bus}
    assert outputs[EVENT_BUS_ARN_OUTPUT]["Value"] == {"Fn::GetAtt": [bus, "Arn"]}
    for workflow in WORKFLOW_NAMES:
        machine = logical_id(synthesized, "AWS::StepFunctions::StateMachine",
                             StateMachineName=f"stepsaga-dev-{workflow}")
        assert outputs[state_machine_output(workflow)]["Value"] == {"Ref": machine}
    assert outputs[CLAIM_TABLE_OUTPUT]["Value"] == {
        "Ref": logical_id(synthesized, "AWS::DynamoDB::Table")}
    policies = {p["Properties"]["ManagedPolicyName"]: k for k, p in
                synthesized.of_type("AWS::IAM::ManagedPolicy").items()
                if "ManagedPolicyName" in p["Properties"]}
    assert outputs[WORKERS_POLICY_OUTPUT]["Value"] == {"Ref": policies["stepsaga-dev-workers"]}
    assert outputs[CONSOLE_POLICY_OUTPUT]["Value"] == {"Ref": policies["stepsaga-dev-console"]}
    assert outputs[REGISTRY_OUTPUT]["Value"] == {"Fn::GetAtt": [
        logical_id(synthesized, "AWS::EventSchemas::Registry"), "RegistryName"]}
    assert WORKER_ROLE_OUTPUT not in outputs and KEY_OUTPUT not in outputs  # dev: none
    template.has_output("*", {"Description": Match.any_value()})


def test_tags_on_resources(template: Template) -> None:
    template.has_resource_properties("AWS::StepFunctions::StateMachine", {
        "Tags": Match.array_with([{"Key": "project", "Value": "stepsaga"},
                                  {"Key": "stage", "Value": "dev"}])})


def test_a_stage_file_changes_the_stack(tmp_path: Path) -> None:
    """Another stage's file: its retention, timeouts, removal policy, tags, a key and a
    worker role."""
    path = tmp_path / "qa.json"
    path.write_text(json.dumps({
        "stage": "qa", "logRetentionDays": 90, "reviewTimeoutSeconds": 3600,
        "shippingDeadlineSeconds": 7200, "removalPolicy": "destroy", "maxReceiveCount": 3,
        "tags": {"cost-center": "42"}, "encryptionKey": "create", "workerRole": "lambda"}))
    synth = synthesize(tmp_path / "out", {"stepsaga:settingsFile": str(path)}, nag=False)
    assert synth.stack.stack_name == "stepsaga-qa"
    template = Template.from_json(synth.template)
    template.has_resource_properties("AWS::SQS::Queue", {
        "QueueName": "stepsaga-qa-order-saga",
        "RedrivePolicy": Match.object_like({"maxReceiveCount": 3})})
    template.has_resource_properties("AWS::Logs::LogGroup", {
        "LogGroupName": "/aws/vendedlogs/states/stepsaga-qa-ManualReview",
        "RetentionInDays": 90})
    for resource in synth.resources.values():
        if resource["Type"] in ("AWS::SQS::Queue", "AWS::DynamoDB::Table",
                                "AWS::Logs::LogGroup", "AWS::KMS::Key"):
            assert resource["DeletionPolicy"] == "Delete"
    template.has_resource_properties("AWS::Events::EventBus", {
        "Name": "stepsaga-qa",
        "Tags": Match.array_with([{"Key": "cost-center", "Value": "42"}])})
    settings = InfraSettings(review_timeout_seconds=3600, shipping_deadline_seconds=7200)
    definitions = {m["Properties"]["StateMachineName"]: json.loads(
        m["Properties"]["DefinitionString"])
        for m in synth.of_type("AWS::StepFunctions::StateMachine").values()}
    assert definitions["stepsaga-qa-ManualReview"] == manual_review_definition(
        settings.manual_review_timings())
    assert definitions["stepsaga-qa-SlowShipping"] == slow_shipping_definition(
        settings.slow_shipping_timings())
    assert definitions["stepsaga-qa-ManualReview"]["States"]["AwaitReview"][
        "TimeoutSeconds"] == 3600

    # the key: rotation on, used by every queue, the table and both log groups
    [key] = synth.of_type("AWS::KMS::Key")
    assert synth.resources[key]["Properties"]["EnableKeyRotation"] is True
    key_arn = {"Fn::GetAtt": [key, "Arn"]}
    for logical, queue in synth.of_type("AWS::SQS::Queue").items():
        assert queue["Properties"]["KmsMasterKeyId"] == key_arn, logical
    [table] = synth.of_type("AWS::DynamoDB::Table").values()
    assert table["Properties"]["SSESpecification"] == {
        "KMSMasterKeyId": key_arn, "SSEEnabled": True, "SSEType": "KMS"}
    for group in synth.of_type("AWS::Logs::LogGroup").values():
        assert group["Properties"]["KmsKeyId"] == key_arn
    statements = synth.resources[key]["Properties"]["KeyPolicy"]["Statement"]
    logs = [s for s in statements if s.get("Sid") == "CloudWatchLogsForThisStage"]
    assert logs and "kms:EncryptionContext:aws:logs:arn" in logs[0]["Condition"]["ArnLike"]
    workers = _policy(synth, "stepsaga-qa-workers")["PolicyDocument"]["Statement"]
    assert {"Sid": "UseTheStackKey", "Effect": "Allow", "Action": list(KEY_ACTIONS),
            "Resource": key_arn} in workers
    assert synth.template["Outputs"][KEY_OUTPUT]["Value"] == key_arn

    # the workers' role: Lambda, this stage's functions only, the workers' policy
    [role] = [r for r in synth.of_type("AWS::IAM::Role").values()
              if r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0][
                  "Principal"] == {"Service": "lambda.amazonaws.com"}]
    condition = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]
    assert condition["ArnLike"]["aws:SourceArn"]["Fn::Join"][1][-1] == (
        ":function:stepsaga-qa-*")
    [attached] = role["Properties"]["ManagedPolicyArns"]
    assert synth.resources[attached["Ref"]]["Properties"]["ManagedPolicyName"] == (
        "stepsaga-qa-workers")
    assert WORKER_ROLE_OUTPUT in synth.template["Outputs"]
