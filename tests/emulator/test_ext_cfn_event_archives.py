"""Extension cfn_event_archives: an archive made by CloudFormation keeps the bus's events
(moto 5.2.5: the stack fails on the pattern object), updates and goes with its stack."""

from __future__ import annotations

import json

from core_saga.emulator import Emulator

from ._cfn import deploy, unique


def _template(bus: str, archive: str, retention: int) -> dict[str, object]:
    return {"Resources": {
        "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": bus}},
        "Archive": {"Type": "AWS::Events::Archive", "Properties": {
            "ArchiveName": archive, "SourceArn": {"Fn::GetAtt": ["Bus", "Arn"]},
            "EventPattern": {"source": [{"prefix": "stepsaga."}]},
            "RetentionDays": retention}}}}


def test_an_archive_keeps_events_updates_and_goes_with_its_stack(emulator: Emulator) -> None:
    cf, events = emulator.boto3_client("cloudformation"), emulator.boto3_client("events")
    bus, archive, stack = unique("bus"), unique("archive"), unique("stack")
    assert deploy(cf, stack, _template(bus, archive, 7))["StackStatus"] == "CREATE_COMPLETE"
    [resource] = [r for r in cf.list_stack_resources(StackName=stack)[
        "StackResourceSummaries"] if r["LogicalResourceId"] == "Archive"]
    assert resource["PhysicalResourceId"] == archive
    described = events.describe_archive(ArchiveName=archive)
    assert (described["State"], described["RetentionDays"]) == ("ENABLED", 7)
    assert json.loads(described["EventPattern"]) == {"source": [{"prefix": "stepsaga."}]}
    events.put_events(Entries=[
        {"EventBusName": bus, "Source": "stepsaga.Order", "DetailType": "X", "Detail": "{}"},
        {"EventBusName": bus, "Source": "other", "DetailType": "X", "Detail": "{}"}])
    assert events.describe_archive(ArchiveName=archive)["EventCount"] == 1
    assert deploy(cf, stack, _template(bus, archive, 30))["StackStatus"] == "UPDATE_COMPLETE"
    assert events.describe_archive(ArchiveName=archive)["RetentionDays"] == 30
    cf.delete_stack(StackName=stack)
    names = [a["ArchiveName"] for a in events.list_archives()["Archives"]]
    assert archive not in names
