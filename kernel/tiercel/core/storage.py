"""Local internal storage: files under a base directory, written atomically and streamed."""

from __future__ import annotations

import builtins
import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO, ClassVar

from pydantic import Field

from tiercel.api import Example, Storage, StorageError

#: Bytes read from a source stream per write.
CHUNK = 1 << 20
#: Prefix of temporary files being written; hidden from list().
TEMP_PREFIX = ".tiercel-part-"


class Local(Storage):
    """Internal storage on the local filesystem, under ``basePath`` (Tiercel's default).

    Writes go to a temporary file in the target directory and are renamed into place, so a
    reader never sees a half-written file. Files stream in chunks both ways, so their size
    is not bounded by memory.
    """

    type: ClassVar[str] = "core.Local"
    aliases: ClassVar[tuple[str, ...]] = ("local",)
    examples: ClassVar[builtins.list[Example]] = [  # `list` is a method in this class
        Example("Outputs kept in internal storage (the local storage is configured on the server, not in the flow)", """\
id: local_storage_example
namespace: company.team
tasks:
  - id: values
    type: core.OutputValues
    values:
      report: "stored with the execution under the storage's basePath"
  - id: show
    type: core.Log
    message: "{{ outputs.values.values.report }}"
"""),
    ]

    basePath: Path = Field(description="Directory holding the files; created when missing.")

    def _path(self, path: str) -> Path:
        """The file for *path*, refusing absolute paths and anything climbing out of basePath."""
        if not isinstance(path, str) or "\0" in path:
            raise StorageError(f"invalid storage path {path!r}")
        rel = PurePosixPath(path.replace("\\", "/"))
        if rel.is_absolute() or (len(path) > 1 and path[1] == ":"):
            raise StorageError(f"storage path `{path}` must be relative (no leading `/` or drive)")
        if ".." in rel.parts:
            raise StorageError(f"storage path `{path}` must not contain `..`")
        base = self.basePath.resolve()
        full = base.joinpath(*rel.parts)
        if not full.resolve().is_relative_to(base):
            raise StorageError(f"storage path `{path}` leads outside the storage (through a symbolic link)")
        return full

    def _file(self, path: str) -> Path:
        full = self._path(path)
        if not PurePosixPath(path).parts:
            raise StorageError("empty storage path: name a file")
        return full

    def put(self, path: str, data: BinaryIO | bytes) -> int:
        full = self._file(path)
        if full.is_dir():
            raise StorageError(f"storage path `{path}` is a directory")
        full.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=full.parent, prefix=TEMP_PREFIX)
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(data, (bytes, bytearray, memoryview)):
                    out.write(data)
                    size = len(data)
                else:
                    while chunk := data.read(CHUNK):
                        out.write(chunk)
                        size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, full)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return size

    def open(self, path: str) -> BinaryIO:
        full = self._file(path)
        if not full.is_file():
            raise FileNotFoundError(f"no file `{path}` in storage")
        return full.open("rb")

    def exists(self, path: str) -> bool:
        return self._file(path).is_file()

    def size(self, path: str) -> int:
        full = self._file(path)
        if not full.is_file():
            raise FileNotFoundError(f"no file `{path}` in storage")
        return full.stat().st_size

    def list(self, prefix: str = "") -> builtins.list[str]:
        root = self._path(prefix) if prefix else self.basePath.resolve()
        base = self.basePath.resolve()
        if root.is_file():
            return [root.relative_to(base).as_posix()]
        found = []
        for directory, _, names in os.walk(root):
            for name in names:
                if not name.startswith(TEMP_PREFIX):
                    found.append((Path(directory) / name).relative_to(base).as_posix())
        return sorted(found)

    def delete(self, path: str) -> bool:
        full = self._file(path)
        if full.is_dir():
            raise StorageError(f"storage path `{path}` is a directory; delete its files")
        try:
            full.unlink()
        except FileNotFoundError:
            return False
        return True
