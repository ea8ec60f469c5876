"""The alarms and the dashboard in the synthesized template (``aws_cdk.assertions``): an
alarm per dead-letter queue, per work queue's oldest message, per state machine outcome
and per rule, all notifying the alarm topic; the dashboard over the queues, the
workflows and the workers; thresholds and the email subscription from the settings."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template
from stepsaga_infra.monitoring import EXECUTION_PROBLEMS, WORKER_METRICS
from stepsaga_infra.queues import QUEUE_NAMES
from stepsaga_infra.settings import InfraSettings, SettingsError
from stepsaga_infra.workflows import WORKFLOW_NAMES

from .conftest import Synthesized, synthesize

Q = "stepsaga-dev-"


@pytest.fixture(scope="module")
def template(synthesized: Synthesized) -> Template:
    return Template.from_json(synthesized.template)


def _queue_id(synth: Synthesized, name: str) -> str:
    [found] = [k for k, v in synth.of_type("AWS::SQS::Queue").items()
               if v["Properties"]["QueueName"] == name]
    return found


def _machine_id(synth: Synthesized, workflow: str) -> str:
    [found] = [k for k, v in synth.of_type("AWS::StepFunctions::StateMachine").items()
               if v["Properties"]["StateMachineName"] == f"stepsaga-dev-{workflow}"]
    return found


def _alarms(synth: Synthesized) -> dict[str, dict[str, Any]]:
    return {v["Properties"]["AlarmName"]: v["Properties"]
            for v in synth.of_type("AWS::CloudWatch::Alarm").values()}


def _topic(synth: Synthesized) -> str:
    [found] = [k for k, v in synth.of_type("AWS::SNS::Topic").items()
               if v["Properties"]["TopicName"] == "stepsaga-dev-alarms"]
    return found


def test_every_dead_letter_queue_has_an_alarm(synthesized: Synthesized) -> None:
    alarms = _alarms(synthesized)
    dlqs = [f"{Q}{name}-dlq" for name in QUEUE_NAMES] + [f"{Q}supervision-events-dlq"]
    assert {v["Properties"]["QueueName"] for v in synthesized.of_type(
        "AWS::SQS::Queue").values() if v["Properties"]["QueueName"].endswith("-dlq")} == set(dlqs)
    for dlq in dlqs:
        name = dlq.removeprefix(Q).removesuffix("-dlq")
        alarm = alarms[f"stepsaga-dev-{name}-dlq-depth"]
        assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert alarm["Namespace"] == "AWS/SQS"
        assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {
            "Fn::GetAtt": [_queue_id(synthesized, dlq), "QueueName"]}}]
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == (
            "GreaterThanThreshold", 0)


def test_every_work_queue_has_an_oldest_message_alarm(synthesized: Synthesized) -> None:
    alarms = _alarms(synthesized)
    for name in QUEUE_NAMES:
        alarm = alarms[f"stepsaga-dev-{name}-oldest-message"]
        assert alarm["MetricName"] == "ApproximateAgeOfOldestMessage"
        assert alarm["Dimensions"][0]["Value"] == {
            "Fn::GetAtt": [_queue_id(synthesized, f"{Q}{name}"), "QueueName"]}
        assert alarm["Threshold"] == InfraSettings().queue_age_alarm_seconds


def test_every_state_machine_has_failed_timed_out_and_aborted_alarms(
        synthesized: Synthesized) -> None:
    alarms = _alarms(synthesized)
    for workflow in WORKFLOW_NAMES:
        for metric in EXECUTION_PROBLEMS:
            alarm = alarms[f"stepsaga-dev-{workflow}-{metric}"]
            assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
                "AWS/States", metric, "Sum")
            assert alarm["Dimensions"] == [{"Name": "StateMachineArn", "Value": {
                "Ref": _machine_id(synthesized, workflow)}}]


def test_every_rule_has_a_failed_invocations_alarm(synthesized: Synthesized) -> None:
    alarms = _alarms(synthesized)
    rules = {v["Properties"]["Name"]: k for k, v in synthesized.of_type(
        "AWS::Events::Rule").items()}
    for workflow in WORKFLOW_NAMES:
        alarm = alarms[f"stepsaga-dev-{workflow}-rule-failed-invocations"]
        assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Events", "FailedInvocations")
        dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        assert dimensions["RuleName"] == {"Ref": rules[f"stepsaga-dev-{workflow}"]}


def test_every_alarm_notifies_the_topic_when_it_fires_and_when_it_clears(
        synthesized: Synthesized, template: Template) -> None:
    topic = {"Ref": _topic(synthesized)}
    alarms = _alarms(synthesized)
    # 7 DLQs, 6 queues' ages, 3 outcomes × 2 workflows, 2 rules, 2 on the workers' metrics
    assert len(alarms) == 7 + 6 + 6 + 2 + 2  # docs/deploy.md prices this many
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == [topic] and alarm["OKActions"] == [topic], name
        assert alarm["TreatMissingData"] == "notBreaching", name
        assert "docs/observability.md" in alarm["AlarmDescription"], name
    template.has_resource_properties("AWS::SNS::Topic", {"TopicName": "stepsaga-dev-alarms"})
    template.resource_count_is("AWS::SNS::Subscription", 0)  # no alarmEmail in dev
    # SSL only (cdk-nag AwsSolutions-SNS3)
    template.has_resource_properties("AWS::SNS::TopicPolicy", {"PolicyDocument": {
        "Statement": Match.array_with([Match.object_like({
            "Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})])}})


def test_the_dashboard_shows_queues_workflows_rules_and_workers(
        synthesized: Synthesized) -> None:
    [dashboard] = synthesized.of_type("AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == "stepsaga-dev"
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for name in QUEUE_NAMES:
        assert _queue_id(synthesized, f"{Q}{name}") in body
        assert _queue_id(synthesized, f"{Q}{name}-dlq") in body
    for workflow in WORKFLOW_NAMES:
        assert _machine_id(synthesized, workflow) in body
    for metric in ("ExecutionsStarted", "ExecutionsSucceeded", *EXECUTION_PROBLEMS,
                   "ApproximateAgeOfOldestMessage", "Invocations", "FailedInvocations"):
        assert metric in body
    for metric, _statistic, _label in WORKER_METRICS:
        assert f'\\"stepsaga\\",\\"{metric}\\"' in body  # the workers' namespace
    # the alarm status widget shows every alarm
    for logical in synthesized.of_type("AWS::CloudWatch::Alarm"):
        assert json.dumps({"Fn::GetAtt": [logical, "Arn"]}) in body


def test_settings_set_thresholds_and_the_email_subscription(tmp_path: Path) -> None:
    settings = tmp_path / "qa.json"
    settings.write_text(json.dumps({
        "stage": "qa", "alarmEmail": "ops@example.com", "queueAgeAlarmSeconds": 120,
        "dlqDepthThreshold": 3, "alarmPeriodSeconds": 300, "alarmEvaluationPeriods": 2,
        "encryptionKey": "create", "workerMetricsNamespace": "shop/workers"}))
    synth = synthesize(tmp_path / "out", {"stepsaga:stage": "qa",
                                          "stepsaga:settingsFile": str(settings)})
    template = Template.from_json(synth.template)
    template.has_resource_properties("AWS::SNS::Subscription", {
        "Protocol": "email", "Endpoint": "ops@example.com"})
    alarms = {v["Properties"]["AlarmName"]: v["Properties"]
              for v in synth.of_type("AWS::CloudWatch::Alarm").values()}
    assert alarms["stepsaga-qa-payment-oldest-message"]["Threshold"] == 120
    assert alarms["stepsaga-qa-payment-dlq-depth"]["Threshold"] == 3
    assert {(a["Period"], a["EvaluationPeriods"]) for a in alarms.values()} == {(300, 2)}
    assert alarms["stepsaga-qa-workers-outbox-age"]["Namespace"] == "shop/workers"
    # with the stack's key the topic is encrypted, and CloudWatch may use the key
    [topic] = synth.of_type("AWS::SNS::Topic").values()
    assert "KmsMasterKeyId" in topic["Properties"]
    [key] = synth.of_type("AWS::KMS::Key").values()
    assert any(s.get("Sid") == "CloudWatchAlarmsToTheTopic"
               for s in key["Properties"]["KeyPolicy"]["Statement"])


@pytest.mark.parametrize(("key", "value", "message"), [
    ("alarmEmail", "not an address", "alarmEmail must be an email address"),
    ("alarmPeriodSeconds", 90, "alarmPeriodSeconds must be a multiple of 60"),
    ("alarmEvaluationPeriods", 0, "alarmEvaluationPeriods must be an integer"),
    ("queueAgeAlarmSeconds", 5, "queueAgeAlarmSeconds must be an integer between 60"),
    ("workerMetricsNamespace", "AWS/SQS", "workerMetricsNamespace must be"),
    ("dlqDepthThreshold", "0", "dlqDepthThreshold must be an integer"),
])
def test_a_bad_alarm_setting_is_refused_naming_its_key(key: str, value: Any,
                                                       message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        InfraSettings.from_mapping({"stage": "qa", key: value})
    with pytest.raises(SettingsError, match="86400"):
        InfraSettings.from_mapping({"alarmPeriodSeconds": 3600, "alarmEvaluationPeriods": 25})


DOC = Path(__file__).resolve().parents[2] / "docs" / "observability.md"


def _alarm_section() -> str:
    text = DOC.read_text()
    start = text.index("## Alarms and what to do")
    return text[start:text.index("\n## ", start + 1)]


def test_docs_explain_every_alarm_and_list_its_settings(synthesized: Synthesized) -> None:
    section = _alarm_section()
    documented = re.findall(r"^\| `(stepsaga-<stage>-[^`]+)` \|", section, re.M)
    patterns = {
        pattern: re.compile("^" + re.escape(pattern).replace(re.escape("<stage>"), "dev")
                            .replace(re.escape("<queue>"), "(" + "|".join(QUEUE_NAMES) + ")")
                            .replace(re.escape("<Workflow>"),
                                     "(" + "|".join(WORKFLOW_NAMES) + ")") + "$")
        for pattern in documented}
    names = set(_alarms(synthesized))
    unexplained = [n for n in names if not any(p.match(n) for p in patterns.values())]
    assert unexplained == []
    assert [p for p, rx in patterns.items() if not any(rx.match(n) for n in names)] == []
    # the settings table: every alarm setting, with its default
    rows = dict(re.findall(r"^\| `([a-zA-Z]+)` \| ([^|]+) \|", section, re.M))
    defaults = InfraSettings().to_mapping()
    alarm_keys = {k for k in InfraSettings.file_keys() if "alarm" in k.lower() or k in (
        "dlqDepthThreshold", "executionProblemsThreshold", "workerMetricsNamespace")}
    assert set(rows) == alarm_keys
    for key, shown in rows.items():
        expected = '""' if defaults[key] == "" else str(defaults[key])
        assert shown.strip().strip("`") == expected, key
