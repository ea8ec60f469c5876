"""Extension cfn_template_url: CloudFormation reads a template uploaded through a
``127.0.0.1`` endpoint (moto 5.2.5 reads path-style URLs only on ``localhost``)."""

from __future__ import annotations

import json
import uuid

import pytest

from core_saga.emulator import Emulator
from core_saga.emulator._extensions.cfn_template_url import is_loopback_url


@pytest.mark.parametrize(("url", "loopback"), [
    ("http://127.0.0.1:5000/b/k", True), ("http://127.9.9.9/b/k", True),
    ("http://[::1]:5000/b/k", True), ("http://localhost:5000/b/k", True),
    ("https://b.s3.amazonaws.com/k", False), ("http://10.0.0.1/b/k", False),
])
def test_loopback_urls(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback


def test_a_template_url_on_127_0_0_1_is_read_path_style(emulator: Emulator) -> None:
    s3, cf = emulator.boto3_client("s3"), emulator.boto3_client("cloudformation")
    bucket, queue = f"t-{uuid.uuid4().hex[:8]}", f"q-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    template = {"Resources": {"Q": {"Type": "AWS::SQS::Queue",
                                    "Properties": {"QueueName": queue}}}}
    s3.put_object(Bucket=bucket, Key="dir/t.json", Body=json.dumps(template).encode())
    url = f"http://127.0.0.1:{emulator.port}/{bucket}/dir/t.json"
    cf.create_stack(StackName=f"s-{queue}", TemplateURL=url)
    assert emulator.boto3_client("sqs").get_queue_url(QueueName=queue)["QueueUrl"]
