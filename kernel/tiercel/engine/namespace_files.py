"""Namespace files: code and data kept per namespace in internal storage, beside the flows.

A file ``scripts/etl.py`` of namespace ``company.team`` is ``tiercel://company/team/_files/scripts/etl.py``.
Paths are relative POSIX paths; ``..``, absolute paths, NUL bytes and backslashes are refused,
so no name reaches outside its namespace's folder.
"""

from __future__ import annotations

import builtins
import fnmatch
import re
from pathlib import Path
from typing import BinaryIO

from tiercel.engine.storage import SCHEME, InternalStorage, namespace_path

FOLDER = "_files"


class NamespaceFileError(ValueError):
    """A refused namespace file path; the message says why."""


def normalise(path: str) -> str:
    """*path* as a clean relative POSIX path (``a//b/./c`` -> ``a/b/c``); NamespaceFileError when refused."""
    if not isinstance(path, str):
        raise NamespaceFileError(f"refused namespace file path {path!r}: give a relative path such as `scripts/etl.py`")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    why = None
    if "\0" in path:
        why = "it contains a NUL byte"
    elif "\\" in path:
        why = "use `/` to separate folders"
    elif path.startswith("/") or (parts and re.fullmatch(r"[A-Za-z]:", parts[0])):
        why = "it is absolute; give it relative to the namespace (`scripts/etl.py`)"
    elif ".." in parts:
        why = "`..` would leave the namespace"
    elif not parts or not path.strip() or any(ord(c) < 32 for c in path):
        why = "empty or with control characters; give a relative path such as `scripts/etl.py`"
    if why:
        raise NamespaceFileError(f"refused namespace file path {path!r}: {why}")
    return "/".join(parts)


def matches(name: str, include: list[str] | None, exclude: list[str] | None) -> bool:
    """Whether *name* is selected by the globs (fnmatch: ``*`` also crosses ``/``)."""
    if include and not any(fnmatch.fnmatchcase(name, g) for g in include):
        return False
    return not (exclude and any(fnmatch.fnmatchcase(name, g) for g in exclude))


class NamespaceFiles:
    """The namespace files of one internal storage."""

    normalise = staticmethod(normalise)

    def __init__(self, storage: InternalStorage) -> None:
        self.storage = storage

    @staticmethod
    def uri(namespace: str, path: str) -> str:
        return f"{SCHEME}{namespace_path(namespace)}/{FOLDER}/{normalise(path)}"

    @staticmethod
    def prefix(namespace: str) -> str:
        return f"{SCHEME}{namespace_path(namespace)}/{FOLDER}/"

    def list(self, namespace: str, include: list[str] | None = None, exclude: list[str] | None = None) -> list[str]:
        """Paths of the namespace's files, sorted, filtered by the globs."""
        prefix = self.prefix(namespace)
        names = [uri[len(prefix) :] for uri in self.storage.list(prefix)]
        return [n for n in names if matches(n, include, exclude)]

    def put(self, namespace: str, path: str, source: Path | BinaryIO | bytes) -> int:
        return self.storage.put(self.uri(namespace, path), source)

    def open(self, namespace: str, path: str) -> BinaryIO:
        return self.storage.open(self.uri(namespace, path))

    def delete(self, namespace: str, path: str) -> bool:
        return self.storage.delete(self.uri(namespace, path))

    def upload_dir(self, namespace: str, folder: Path) -> builtins.list[str]:
        """Upload every file under *folder* (as its namespace files); a symlink leading out of it is refused."""
        root = folder.resolve()
        found = []
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            if not file.resolve().is_relative_to(root):
                raise NamespaceFileError(f"refused {file}: it is a link to {file.resolve()}, outside {folder}")
            found.append((normalise(file.relative_to(folder).as_posix()), file))
        for name, file in found:
            self.put(namespace, name, file)
        return [name for name, _ in found]
