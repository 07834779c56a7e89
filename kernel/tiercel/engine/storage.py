"""Internal storage: ``tiercel://`` URIs mapped onto a Storage plugin, scoped by namespace."""

from __future__ import annotations

import io
import os
import posixpath
from pathlib import Path
from typing import Any, BinaryIO

from tiercel.api import Storage, StorageError

SCHEME = "tiercel://"


def namespace_path(namespace: str) -> str:
    return namespace.replace(".", "/")


def _owned(path: str, namespace: str) -> bool:
    """Whether *path* may be read by *namespace*: under its prefix, and not a file of another namespace.

    The prefix alone is not enough: the flow ``victim`` of ``company`` and the namespace
    ``company.victim`` share ``company/victim/``. Files are laid out as ``<ns>/<flow>/executions/…``
    and ``<ns>/_files/…``; a path that is, by that layout, a parent's or a child's file is refused.
    """
    root = namespace_path(namespace).split("/")
    parts, n = path.split("/"), len(root)
    if parts[:n] != root:
        return False
    if any(parts[j + 1] == "executions" for j in range(1, n)):  # <parent ns>/<flow>/executions/…
        return False
    if len(parts) > n and parts[n] == "_files" or len(parts) > n + 1 and parts[n + 1] == "executions":
        return True  # its own namespace files or flows' files
    return not any(parts[k] == "_files" or parts[k + 1] == "executions" for k in range(n + 1, len(parts) - 1))


class InternalStorage:
    """Files of executions, inputs and large outputs, addressed by ``tiercel://`` URIs."""

    def __init__(self, backend: Storage) -> None:
        self.backend = backend

    @staticmethod
    def task_uri(namespace: str, flow_id: str, execution_id: str, task_id: str, task_run_id: str, name: str) -> str:
        return (f"{SCHEME}{namespace_path(namespace)}/{flow_id}/executions/{execution_id}"
                f"/tasks/{task_id}/{task_run_id}/{_clean_name(name)}")

    @staticmethod
    def input_uri(namespace: str, flow_id: str, execution_id: str, input_id: str, name: str) -> str:
        return (f"{SCHEME}{namespace_path(namespace)}/{flow_id}/executions/{execution_id}"
                f"/inputs/{input_id}/{_clean_name(name)}")

    @staticmethod
    def path_of(uri: str, namespace: str | None = None) -> str:
        """The storage path of *uri*; refuses other schemes, escapes and other namespaces."""
        if not isinstance(uri, str) or not uri.startswith(SCHEME):
            raise StorageError(f"not an internal storage URI: {uri!r} (expected tiercel://…)")
        raw = uri[len(SCHEME):].lstrip("/")
        path = posixpath.normpath(raw)
        if path.startswith("..") or path.startswith("/") or path in (".", "") or ".." in raw.split("/"):
            raise StorageError(f"refused storage path {uri!r}: it escapes the storage root")
        if namespace is not None and not _owned(path, namespace):
            raise StorageError(f"refused {uri!r}: namespace `{namespace}` may only read its own files")
        return path

    def put(self, uri: str, source: Path | BinaryIO | bytes) -> int:
        path = self.path_of(uri)
        if isinstance(source, bytes):
            return self.backend.put(path, io.BytesIO(source))
        if isinstance(source, (str, Path)):
            with open(source, "rb") as fh:
                return self.backend.put(path, fh)
        return self.backend.put(path, source)

    def open(self, uri: str, namespace: str | None = None) -> BinaryIO:
        return self.backend.open(self.path_of(uri, namespace))

    def read_text(self, uri: str, namespace: str | None = None) -> str:
        with self.open(uri, namespace) as fh:
            return fh.read().decode("utf-8")

    def exists(self, uri: str) -> bool:
        return self.backend.exists(self.path_of(uri))

    def delete(self, uri: str) -> bool:
        return self.backend.delete(self.path_of(uri))

    def list(self, prefix_uri: str) -> list[str]:
        return [SCHEME + p for p in self.backend.list(self.path_of(prefix_uri))]


def _clean_name(name: str) -> str:
    name = name.replace("\\", "/")
    parts = [p for p in name.split("/") if p not in ("", ".", "..")]
    if not parts:
        raise StorageError(f"invalid file name {name!r}")
    return "/".join(parts)


def resolve_backend(home: Path, registry: Any, uri: str | None = None) -> Storage:
    """The storage a process uses: ``TIERCEL_STORAGE`` (``local`` by default), answered by a plugin's ``resolve_storage``."""
    from urllib.parse import parse_qsl, urlsplit

    uri = uri if uri is not None else os.environ.get("TIERCEL_STORAGE", "local")
    options = dict(parse_qsl(urlsplit(uri).query)) if "://" in uri else {}
    backend: Storage | None = registry.hook.resolve_storage(uri=uri, options=options, home=home)
    if backend is None:
        schemes = sorted({c.type for c in registry.components("storage")})
        raise StorageError(f"no installed plugin provides the internal storage `{uri}` (TIERCEL_STORAGE); "
                           f"installed storages: {', '.join(schemes)} (an s3:// storage comes with tiercel-aws)")
    return backend
