"""Shared pieces for runner plugins whose commands run away from the worker's disk (a container,
a pod, a remote host): the same file rules, output globs and line splitting as ``core.Process``,
so a task behaves alike on every runner.

- :func:`write_inputs` / :func:`input_tar` put ``job.input_files`` in a directory or a tar stream;
- :func:`output_name` says whether a working-directory path is an output file (matching
  ``job.output_files`` or under ``OUTPUT_DIR``) and under which name;
- :func:`extract_outputs` streams a tar of the working directory into local output files;
- :func:`shell_script` turns ``job.commands`` into one POSIX shell script (with ``fail_fast``);
- :class:`LineSplitter` cuts streamed bytes into the lines ``job.on_stdout``/``on_stderr`` expect.

See docs/plugins/runners.md.
"""

from __future__ import annotations

import codecs
import fnmatch
import io
import shlex
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import IO

from tiercel.api import TaskError

__all__ = [
    "OUTPUT_DIR_NAME",
    "MAX_LINE",
    "LineSplitter",
    "check_relative",
    "extract_outputs",
    "glob_match",
    "input_tar",
    "output_name",
    "shell_script",
    "write_inputs",
]

#: Directory, inside the working directory, exported as OUTPUT_DIR: everything in it is an output file.
OUTPUT_DIR_NAME = ".output"
#: Longest line passed to a callback; longer output is split.
MAX_LINE = 1 << 20


def check_relative(name: str, what: str) -> PurePosixPath:
    """*name* as a relative POSIX path; a TaskError when it is absolute or climbs out with ``..``."""
    rel = PurePosixPath(name.replace("\\", "/"))
    if not name or rel.is_absolute() or ".." in rel.parts:
        raise TaskError(
            f"{what} `{name}` must be a relative path inside the working directory (no leading `/`, no `..`)"
        )
    return rel


def write_inputs(root: Path, files: dict[str, bytes | Path]) -> None:
    """Write ``job.input_files`` under *root* (a Path value is copied, streamed)."""
    for name, content in files.items():
        path = root / check_relative(name, "input file")
        if not path.resolve().is_relative_to(root.resolve()):
            raise TaskError(f"input file `{name}` escapes the working directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, path)
        else:
            path.write_bytes(content if isinstance(content, bytes) else str(content).encode())


def input_tar(files: dict[str, bytes | Path], prefix: str = "", dirs: Iterable[str] = ()) -> IO[bytes]:
    """A tar archive (rewound, spooled to disk past 8 MiB) of the input files under *prefix*, after
    the directories *dirs* (full names in the archive). Directories are world-writable, so a
    command running as another user can still write its outputs."""
    spool = tempfile.SpooledTemporaryFile(max_size=8 << 20)
    with tarfile.open(fileobj=spool, mode="w") as tar:
        made: set[str] = set()
        for key in dirs:
            made.add(key)
            info = tarfile.TarInfo(key)
            info.type, info.mode = tarfile.DIRTYPE, 0o777
            tar.addfile(info)
        for name, content in files.items():
            rel = check_relative(name, "input file")
            for parent in reversed(rel.parents[:-1]):  # directories first
                key = f"{prefix}{parent}"
                if key not in made:
                    made.add(key)
                    info = tarfile.TarInfo(key)
                    info.type, info.mode = tarfile.DIRTYPE, 0o777
                    tar.addfile(info)
            info = tarfile.TarInfo(f"{prefix}{rel}")
            info.mode = 0o666
            if isinstance(content, Path):
                info.size = content.stat().st_size
                with content.open("rb") as src:
                    tar.addfile(info, src)
            else:
                data = content if isinstance(content, bytes) else str(content).encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    spool.seek(0)
    return spool


def glob_match(path: str, pattern: str) -> bool:
    """Whether the relative POSIX *path* matches *pattern* as ``Path.glob`` would (``*`` stays in
    one directory, ``**`` spans any number of them)."""

    def match(parts: list[str], pats: list[str]) -> bool:
        if not pats:
            return not parts
        if pats[0] == "**":
            return any(match(parts[i:], pats[1:]) for i in range(len(parts) + 1))
        return bool(parts) and fnmatch.fnmatchcase(parts[0], pats[0]) and match(parts[1:], pats[1:])

    return match(path.split("/"), [p for p in pattern.replace("\\", "/").split("/") if p not in ("", ".")])


def output_name(path: str, globs: Iterable[str]) -> str | None:
    """The output name of the working-directory file *path*, or None when it is not an output:
    files under ``OUTPUT_DIR`` come back without that prefix, others when they match a glob."""
    head = OUTPUT_DIR_NAME + "/"
    if path.startswith(head):
        return path[len(head) :]
    for pattern in globs:
        check_relative(pattern, "output file pattern")
        if glob_match(path, pattern):
            return path
    return None


def extract_outputs(stream: IO[bytes], dest: Path, globs: list[str], strip: str = "") -> dict[str, Path]:
    """Read a tar of the working directory (streamed, never all in memory) and write the output
    files under *dest*; *strip* is a leading path removed from member names (``work/``)."""
    files: dict[str, Path] = {}
    with tarfile.open(fileobj=stream, mode="r|*") as tar:
        for member in tar:
            if not member.isfile() or not member.name.startswith(strip):
                continue
            rel = member.name[len(strip) :].lstrip("/")
            if rel.startswith("./"):
                rel = rel[2:]
            name = output_name(rel, globs)
            if not name or ".." in PurePosixPath(name).parts or name in files:
                continue
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tar.extractfile(member)
            if src is None:
                continue
            with src, target.open("wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            files[name] = target
    return files


def shell_script(commands: list[list[str]], fail_fast: bool) -> str:
    """One POSIX shell script running *commands* in order; it exits with the first non-zero code
    (and stops there when *fail_fast*), like ``core.Process`` running them one by one."""
    if not commands or any(not argv for argv in commands):
        raise TaskError("empty command: each command is a non-empty list of arguments")
    if len(commands) == 1:
        return shlex.join(commands[0])
    lines = ["rc=0"]
    for argv in commands:
        stop = "exit $c; " if fail_fast else ""
        lines.append(f"{shlex.join(argv)}; c=$?; if [ $c -ne 0 ]; then {stop}[ $rc -eq 0 ] && rc=$c; fi")
    lines.append("exit $rc")
    return "\n".join(lines)


class LineSplitter:
    """Cuts streamed bytes into text lines (UTF-8, invalid bytes replaced, ``\\r\\n`` trimmed);
    a line longer than :data:`MAX_LINE` is passed on in pieces."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self._emit = emit
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending = ""

    def feed(self, data: bytes | str) -> None:
        self._pending += data if isinstance(data, str) else self._decoder.decode(data)
        *lines, self._pending = self._pending.split("\n")
        if len(self._pending) > MAX_LINE:
            lines.append(self._pending)
            self._pending = ""
        for line in lines:
            self._emit(line.removesuffix("\r"))

    def close(self) -> None:
        self._pending += self._decoder.decode(b"", final=True)
        if self._pending:
            self._emit(self._pending.removesuffix("\r"))
        self._pending = ""
