"""Storage checks: round trips, a large file streamed in bounded memory, escaping paths refused."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tracemalloc
from typing import Any

from tiercel_registry.checks import CheckSkipped, Options, fail


def _storage(cls: type, options: Options) -> Any:
    from pydantic import ValidationError

    try:
        return cls.model_validate(options.properties)
    except ValidationError as exc:
        raise CheckSkipped(f"cannot build the storage from `properties` {options.properties!r}: give the conformance "
                           f"class a `properties` fixture (e.g. a temporary basePath; {exc.error_count()} errors)") from None


def _read(storage: Any, path: str) -> bytes:
    with storage.open(path) as fh:
        return fh.read()


def check_roundtrip(cls: type, options: Options) -> None:
    s = _storage(cls, options)
    root = "conformance/roundtrip"
    for old in s.list(root):
        s.delete(old)
    problems: list[str] = []

    def expect(what: str, got: Any, want: Any) -> None:
        if got != want:
            problems.append(f"{cls.type}: {what} gave {got!r}, expected {want!r}")

    expect(f"put('{root}/a.txt', 5 bytes)", s.put(f"{root}/a.txt", io.BytesIO(b"hello")), 5)
    expect("open() then read()", _read(s, f"{root}/a.txt"), b"hello")
    expect("exists()", s.exists(f"{root}/a.txt"), True)
    expect("size()", s.size(f"{root}/a.txt"), 5)
    s.put(f"{root}/a.txt", io.BytesIO(b"bye"))
    expect("read() after overwriting", _read(s, f"{root}/a.txt"), b"bye")
    s.put(f"{root}/sub/b.bin", io.BytesIO(b"\x00\x01"))
    expect(f"list('{root}')", s.list(root), [f"{root}/a.txt", f"{root}/sub/b.bin"])
    expect(f"list('{root}/sub')", s.list(f"{root}/sub"), [f"{root}/sub/b.bin"])
    expect("delete() of an existing file", s.delete(f"{root}/a.txt"), True)
    expect("exists() after delete()", s.exists(f"{root}/a.txt"), False)
    expect("delete() of a missing file", s.delete(f"{root}/a.txt"), False)
    expect("list() after delete()", s.list(root), [f"{root}/sub/b.bin"])
    try:
        _read(s, f"{root}/missing.txt")
        problems.append(f"{cls.type}: open() of a missing file did not raise FileNotFoundError")
    except FileNotFoundError:
        pass
    s.delete(f"{root}/sub/b.bin")
    fail(problems)


class _Generated(io.RawIOBase):
    """*size* deterministic bytes produced on demand: a file that never sits in memory."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.counter = 0
        self.digest = hashlib.sha256()
        self.block = hashlib.sha256(b"tiercel").digest() * 2048  # 64 KiB

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.left, len(self.block))
        if n <= 0:
            return 0
        self.counter += 1
        chunk = self.counter.to_bytes(8, "big") + self.block[8:n] if n > 8 else self.block[:n]
        buffer[:n] = chunk
        self.digest.update(chunk)
        self.left -= n
        return n


def check_large_file(cls: type, options: Options) -> None:
    s = _storage(cls, options)
    path, size = "conformance/large/file.bin", options.large_file_size
    source = _Generated(size)
    tracemalloc.start()
    try:
        written = s.put(path, io.BufferedReader(source, 1 << 16))
        put_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        digest, read = hashlib.sha256(), 0
        with s.open(path) as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
                read += len(chunk)
        get_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        with contextlib.suppress(Exception):
            s.delete(path)
    mib = 1 << 20
    problems = []
    if written != size:
        problems.append(f"{cls.type}: put() of a {size // mib} MiB stream returned {written}")
    if read != size or digest.digest() != source.digest.digest():
        problems.append(f"{cls.type}: the {size // mib} MiB file read back differs ({read} bytes)")
    for what, peak in (("put()", put_peak), ("reading it", get_peak)):
        if peak > options.max_memory:
            problems.append(f"{cls.type}: {what} of a {size // mib} MiB file used {peak / mib:.0f} MiB of memory "
                            f"(limit {options.max_memory // mib} MiB); copy in chunks instead of reading it whole")
    fail(problems)


#: Paths a storage must refuse. Harmless targets: a broken storage may really write there.
ESCAPES = ("../conformance-escape.txt", "a/../../conformance-escape.txt", "/tmp/conformance-escape.txt")


def check_escape_refused(cls: type, options: Options) -> None:
    from tiercel.api import StorageError

    s = _storage(cls, options)
    problems = []
    for path in ESCAPES:
        for op, call in (("put", lambda p: s.put(p, io.BytesIO(b"x"))), ("open", s.open), ("exists", s.exists),
                         ("delete", s.delete)):
            try:
                call(path)
            except StorageError:
                continue
            except Exception as exc:
                problems.append(f"{cls.type}: {op}({path!r}) raised {type(exc).__name__}, expected tiercel.StorageError")
                continue
            problems.append(f"{cls.type}: {op}({path!r}) was accepted; refuse absolute paths and `..` with "
                            f"tiercel.StorageError")
    with contextlib.suppress(OSError):
        os.remove(ESCAPES[-1])
    fail(problems)
