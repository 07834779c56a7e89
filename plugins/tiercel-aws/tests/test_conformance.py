"""The registry's conformance suite for every aws.* component, against a private moto server."""

from __future__ import annotations

import uuid

import pytest
from tiercel_aws import tasks
from tiercel_aws.storage import S3Storage
from tiercel_aws.triggers import S3Trigger, SqsRealtimeTrigger, SqsTrigger

from tiercel_registry import StorageConformance, TaskConformance, TriggerConformance

AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch):
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)


def _client(endpoint, service):
    import boto3

    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1")


@pytest.fixture
def bucket(s3_endpoint, aws_credentials):
    name = f"b-{uuid.uuid4().hex[:8]}"
    _client(s3_endpoint, "s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def queue_url(s3_endpoint, aws_credentials):
    return _client(s3_endpoint, "sqs").create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]


class _S3Task(TaskConformance):
    @pytest.fixture
    def example_inputs(self, s3_endpoint, bucket):
        return {"endpoint": s3_endpoint, "bucket": bucket}


class TestS3Upload(_S3Task):
    component = tasks.S3Upload


class TestS3Download(_S3Task):
    component = tasks.S3Download


class TestS3List(_S3Task):
    component = tasks.S3List


class TestS3Delete(_S3Task):
    component = tasks.S3Delete


class TestS3Copy(_S3Task):
    component = tasks.S3Copy


class TestS3CreateBucket(_S3Task):
    component = tasks.S3CreateBucket


class TestS3Downloads(_S3Task):
    component = tasks.S3Downloads


class TestS3DeleteList(_S3Task):
    component = tasks.S3DeleteList


class TestSqsConsume(TaskConformance):
    component = tasks.SqsConsume

    @pytest.fixture
    def example_inputs(self, s3_endpoint, queue_url):
        return {"endpoint": s3_endpoint, "queueUrl": queue_url}


class TestSqsTrigger(TriggerConformance):
    component = SqsTrigger

    @pytest.fixture
    def properties(self, s3_endpoint, queue_url):
        return {"endpointOverride": s3_endpoint, "queueUrl": queue_url, "waitTime": "PT1S", "interval": "PT1S"}

    @pytest.fixture
    def emit(self, s3_endpoint, queue_url):
        def send_one():
            _client(s3_endpoint, "sqs").send_message(QueueUrl=queue_url, MessageBody=f"{{\"id\": \"{uuid.uuid4().hex}\"}}")
        return send_one


class TestS3Trigger(TriggerConformance):
    component = S3Trigger

    @pytest.fixture
    def properties(self, s3_endpoint, bucket):
        return {"endpointOverride": s3_endpoint, "bucket": bucket, "prefix": "in/", "interval": "PT1S",
                "action": "MOVE", "moveTo": {"key": "done"}}

    @pytest.fixture
    def emit(self, s3_endpoint, bucket):
        def put_one():
            _client(s3_endpoint, "s3").put_object(Bucket=bucket, Key=f"in/{uuid.uuid4().hex[:8]}.csv", Body=b"x")
        return put_one


class TestSqsPublish(TaskConformance):
    component = tasks.SqsPublish

    @pytest.fixture
    def example_inputs(self, s3_endpoint, queue_url):
        return {"endpoint": s3_endpoint, "queueUrl": queue_url}


class TestSqsRealtimeTrigger(TriggerConformance):
    component = SqsRealtimeTrigger

    @pytest.fixture
    def properties(self, s3_endpoint, queue_url):
        return {"endpointOverride": s3_endpoint, "queueUrl": queue_url, "waitTime": "PT1S"}

    @pytest.fixture
    def emit(self, s3_endpoint, queue_url):
        def send_one():
            _client(s3_endpoint, "sqs").send_message(QueueUrl=queue_url, MessageBody='{"n": 1}')
        return send_one


class TestS3Storage(StorageConformance):
    component = S3Storage
    large_file_size = 64 << 20  # streamed through moto: a minute would go to 2 GB; see README for the long run

    @pytest.fixture
    def properties(self, s3_endpoint, bucket):
        return {"bucket": bucket, "prefix": "conformance", "endpointOverride": s3_endpoint}
