"""Extension cfn_event_bus_ref: a rule on a bus given by ``Ref`` deploys (moto 5.2.5:
HTTP 500 inside the change set)."""

from __future__ import annotations

from core_saga.emulator import Emulator

from ._cfn import deploy, outputs, unique


def test_event_bus_ref(emulator: Emulator) -> None:
    cf = emulator.boto3_client("cloudformation")
    bus = unique("bus")
    described = deploy(cf, unique("stack"), {"Resources": {
        "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": bus}},
        "Rule": {"Type": "AWS::Events::Rule", "Properties": {
            "EventBusName": {"Ref": "Bus"}, "EventPattern": {"source": ["x"]}}}},
        "Outputs": {"BusName": {"Value": {"Ref": "Bus"}}}})
    assert described["StackStatus"] == "CREATE_COMPLETE"
    assert outputs(described)["BusName"] == bus
    rules = emulator.boto3_client("events").list_rules(EventBusName=bus)["Rules"]
    assert len(rules) == 1
