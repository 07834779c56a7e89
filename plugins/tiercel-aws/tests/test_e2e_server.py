"""End to end through a running `tiercel server`: SQS messages with a SIGKILL mid-way, the server storing its
files in S3 (TIERCEL_STORAGE=s3://…). moto serves both.

200 messages rather than the other brokers' 1,000: each moto ReceiveMessage takes about 0.28 s (10 messages),
so 1,000 would cost a minute of moto, not of Tiercel.
"""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest

from tiercel.testing import TiercelServer, wait_triggered
from tiercel.testing.harness import triggered

pytestmark = pytest.mark.slow

AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def _sqs(endpoint: str):
    import boto3

    return boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def _send(endpoint: str, queue: str, numbers: range) -> None:
    sqs = _sqs(endpoint)
    numbers = list(numbers)
    for start in range(0, len(numbers), 10):
        sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": str(n), "MessageBody": f'{{"n": {n}}}'}
                                                         for n in numbers[start:start + 10]])


def test_messages_exactly_once_across_a_sigkill_with_files_in_s3(s3_endpoint, tmp_path):
    import boto3

    bucket, flow_id = f"b-{uuid.uuid4().hex[:8]}", "many"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=bucket)
    queue = _sqs(s3_endpoint).create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    env = {**AWS_ENV, "TIERCEL_STORAGE": f"s3://{bucket}/tiercel?endpoint={s3_endpoint}"}
    home = tmp_path / "home"
    flow = f"""
id: {flow_id}
namespace: e2e.aws
tasks:
  - id: log
    type: core.Log
    message: "{{{{ trigger.value.n }}}}"
triggers:
  - id: messages
    type: aws.sqs.RealtimeTrigger
    endpointOverride: "{s3_endpoint}"
    queueUrl: "{queue}"
    serdeType: JSON
    waitTime: PT1S
    visibilityTimeout: PT2S
"""
    _send(s3_endpoint, queue, range(100))  # two halves, the kill between
    server = TiercelServer(home, env={**os.environ, **env}).start()
    try:
        server.deploy(flow)
        wait_triggered(home, flow_id, 20, 60, server, interval=0.01)
        server.stop(signal.SIGKILL)  # executions created whose messages were never deleted
        killed_at = len(triggered(home, flow_id))
        assert 0 < killed_at <= 100
        _send(s3_endpoint, queue, range(100, 200))  # arrives while the server is down
        server = TiercelServer(home, env={**os.environ, **env}).start()
        wait_triggered(home, flow_id, 200, 120, server)
        time.sleep(2.5)  # past the visibility timeout: anything redelivered has had time to show up
        found = triggered(home, flow_id)
        attrs = _sqs(s3_endpoint).get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    finally:
        server.stop()
    numbers = sorted(v["value"]["n"] for v in found)
    assert numbers == list(range(200)), f"{len(numbers)} executions, {len(set(numbers))} distinct (killed at {killed_at})"
    assert attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
