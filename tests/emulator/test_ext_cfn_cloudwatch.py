"""Extension cfn_cloudwatch: ``AWS::CloudWatch::Alarm`` is made, its ``Arn`` resolves (in
a dashboard's body too), an update replaces it and the stack's deletion removes it;
``AWS::SNS::TopicPolicy`` sets its topics' policy (moto 5.2.5 skips both)."""

from __future__ import annotations

import json

from core_saga.emulator import Emulator

from ._cfn import deploy, outputs, unique


def _template(alarm: str, dashboard: str, threshold: int) -> dict[str, object]:
    return {
        "Resources": {
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": alarm}},
            "TopicPolicy": {"Type": "AWS::SNS::TopicPolicy", "Properties": {
                "Topics": [{"Ref": "Topic"}], "PolicyDocument": {
                    "Version": "2012-10-17", "Statement": [{
                        "Sid": "SslOnly", "Effect": "Deny", "Principal": "*",
                        "Action": "sns:Publish", "Resource": {"Ref": "Topic"},
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}}},
            "Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {
                "AlarmName": alarm, "Namespace": "AWS/SQS",
                "MetricName": "ApproximateNumberOfMessagesVisible",
                "Dimensions": [{"Name": "QueueName", "Value": "q-dlq"}],
                "Statistic": "Maximum", "Period": 60, "EvaluationPeriods": 1,
                "Threshold": threshold, "ComparisonOperator": "GreaterThanThreshold",
                "TreatMissingData": "notBreaching", "AlarmActions": [{"Ref": "Topic"}],
                "OKActions": [{"Ref": "Topic"}]}},
            "Board": {"Type": "AWS::CloudWatch::Dashboard", "Properties": {
                "DashboardName": dashboard, "DashboardBody": {"Fn::Join": ["", [
                    '{"widgets":[{"type":"alarm","properties":{"alarms":["',
                    {"Fn::GetAtt": ["Alarm", "Arn"]}, '"]}}]}']]}}}},
        "Outputs": {"AlarmArn": {"Value": {"Fn::GetAtt": ["Alarm", "Arn"]}}},
    }


def test_alarms_and_dashboards(emulator: Emulator) -> None:
    cf = emulator.boto3_client("cloudformation")
    cloudwatch = emulator.boto3_client("cloudwatch")
    stack, alarm, dashboard = unique("stack"), unique("alarm"), unique("board")
    described = deploy(cf, stack, _template(alarm, dashboard, 0))
    (made,) = cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"]
    assert outputs(described)["AlarmArn"] == made["AlarmArn"]
    assert (made["Threshold"], made["TreatMissingData"]) == (0, "notBreaching")
    assert made["Dimensions"] == [{"Name": "QueueName", "Value": "q-dlq"}]
    assert made["AlarmActions"] == made["OKActions"] and made["AlarmActions"][0].endswith(alarm)
    policy = json.loads(emulator.boto3_client("sns").get_topic_attributes(
        TopicArn=made["AlarmActions"][0])["Attributes"]["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["SslOnly"]
    body = json.loads(cloudwatch.get_dashboard(DashboardName=dashboard)["DashboardBody"])
    assert body["widgets"][0]["properties"]["alarms"] == [made["AlarmArn"]]
    deploy(cf, stack, _template(alarm, dashboard, 3))
    (updated,) = cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"]
    assert updated["Threshold"] == 3
    cf.delete_stack(StackName=stack)
    assert cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"] == []
