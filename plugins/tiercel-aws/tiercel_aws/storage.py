"""Internal storage in S3: executors and workers on several hosts share files through a bucket.

Files stream both ways through smart-open: a put is a multipart upload fed in parts, a read
fetches byte ranges as it goes, so a 2 GB file never sits in memory. S3 writes are atomic: a
reader sees the old object or the new one, never half of it.
"""

from __future__ import annotations

import builtins
from pathlib import PurePosixPath
from typing import Any, BinaryIO, ClassVar

from pydantic import Field, PrivateAttr

from tiercel.api import Example, Storage, StorageError
from tiercel_aws._common import AwsConnection

_PART = 5 << 20  # multipart part size (the S3 minimum): memory held per upload


class S3Storage(AwsConnection, Storage):
    """Internal storage in an S3 bucket (or an S3-compatible service), under `prefix`.

    Set it for a whole installation with `TIERCEL_STORAGE=s3://bucket/prefix` (query
    parameters `region` and `endpoint`); credentials come from the usual AWS chain.
    """

    type: ClassVar[str] = "aws.s3.Storage"
    aliases: ClassVar[tuple[str, ...]] = ("s3",)
    examples: ClassVar[builtins.list[Example]] = [Example("Outputs kept in S3 (configured on the server: "
                                                          "TIERCEL_STORAGE=s3://my-bucket/tiercel)", """\
id: s3_storage_example
namespace: company.team
tasks:
  - id: values
    type: core.OutputValues
    values:
      report: "stored with the execution in the bucket"
  - id: show
    type: core.Log
    message: "{{ outputs.values.values.report }}"
""")]

    bucket: str = Field(description="Bucket holding the files (it must exist).")
    prefix: str = Field("", description="Key prefix of every file, e.g. `tiercel/prod`.")

    _s3: Any = PrivateAttr(None)

    def model_post_init(self, context: Any) -> None:
        """Make the client now: loading botocore's service model (megabytes) belongs to start-up, not to a file."""
        import smart_open.s3  # noqa: F401  (imported here for the same reason)

        super().model_post_init(context)

        self._s3 = self.client("s3")

    def _client(self) -> Any:
        return self._s3

    def _key(self, path: str, file: bool = True) -> str:
        """The object key of *path*, refusing absolute paths and `..` as the local storage does."""
        if not isinstance(path, str) or "\0" in path:
            raise StorageError(f"invalid storage path {path!r}")
        rel = PurePosixPath(path.replace("\\", "/"))
        if rel.is_absolute() or (len(path) > 1 and path[1] == ":"):
            raise StorageError(f"storage path `{path}` must be relative (no leading `/` or drive)")
        if ".." in rel.parts:
            raise StorageError(f"storage path `{path}` must not contain `..`")
        if file and not rel.parts:
            raise StorageError("empty storage path: name a file")
        return "/".join(p for p in (self.prefix.strip("/"), *rel.parts) if p)

    def _uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return self._client().head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StorageError(f"S3 {self._uri(key)}: {exc}") from exc

    def put(self, path: str, data: BinaryIO | bytes) -> int:
        import smart_open

        key, size = self._key(path), 0
        params = {"client": self._client(), "min_part_size": _PART}
        with smart_open.open(self._uri(key), "wb", transport_params=params, compression="disable") as out:
            if isinstance(data, (bytes, bytearray, memoryview)):
                out.write(data)
                return len(data)
            while chunk := data.read(1 << 20):
                out.write(chunk)
                size += len(chunk)
        return size

    def open(self, path: str) -> BinaryIO:
        import smart_open

        key = self._key(path)
        if self._head(key) is None:
            raise FileNotFoundError(f"no file `{path}` in s3://{self.bucket}/{self.prefix}")
        return smart_open.open(self._uri(key), "rb", transport_params={"client": self._client(), "buffer_size": 256 << 10},
                               compression="disable")

    def exists(self, path: str) -> bool:
        return self._head(self._key(path)) is not None

    def size(self, path: str) -> int:
        head = self._head(self._key(path))
        if head is None:
            raise FileNotFoundError(f"no file `{path}` in s3://{self.bucket}/{self.prefix}")
        return int(head["ContentLength"])

    def list(self, prefix: str) -> builtins.list[str]:
        base = self._key(prefix, file=False)
        strip = len(self.prefix.strip("/")) + 1 if self.prefix.strip("/") else 0
        paths = []
        for page in self._client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base.rstrip("/") + "/" if base else ""):
            paths += [obj["Key"][strip:] for obj in page.get("Contents", ())]
        return sorted(paths)

    def delete(self, path: str) -> bool:
        key = self._key(path)
        if self._head(key) is None:
            return False
        self._client().delete_object(Bucket=self.bucket, Key=key)
        return True
