"""Entry point of the AWS plugin: its storage, tasks and trigger, and `s3://` for TIERCEL_STORAGE (boto3 loads lazily)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tiercel.hookspecs import hookimpl

TIERCEL_API = ">=1.0,<2"


@hookimpl
def register_tasks(register: Callable[[type], None]) -> None:
    from tiercel_aws import tasks

    for cls in (tasks.S3CreateBucket, tasks.S3Upload, tasks.S3Download, tasks.S3List, tasks.S3Copy, tasks.S3Delete,
                tasks.S3Downloads, tasks.S3DeleteList, tasks.SqsPublish, tasks.SqsConsume):
        register(cls)


@hookimpl
def register_triggers(register: Callable[[type], None]) -> None:
    from tiercel_aws.triggers import S3Trigger, SqsRealtimeTrigger, SqsTrigger

    for cls in (SqsRealtimeTrigger, SqsTrigger, S3Trigger):
        register(cls)


@hookimpl
def register_storages(register: Callable[[type], None]) -> None:
    from tiercel_aws.storage import S3Storage

    register(S3Storage)


@hookimpl
def resolve_storage(uri: str, options: dict[str, str], home: Path) -> Any:
    """``s3://bucket/prefix?region=…&endpoint=…``: files in S3 (credentials from the usual AWS chain)."""
    if not uri.startswith("s3://"):
        return None
    from tiercel_aws.storage import S3Storage

    bucket, _, prefix = uri.removeprefix("s3://").split("?", 1)[0].partition("/")
    return S3Storage(bucket=bucket, prefix=prefix, region=options.get("region"),
                     endpointOverride=options.get("endpoint") or options.get("endpointOverride"))
