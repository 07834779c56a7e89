"""core.Local storage: round trips, listing, escapes refused, atomic writes, large files streamed."""

from __future__ import annotations

import hashlib
import io
import os
import tracemalloc
from pathlib import Path

import pytest

from tiercel.api import StorageError
from tiercel.core.storage import CHUNK, Local


@pytest.fixture
def store(tmp_path: Path) -> Local:
    return Local(basePath=tmp_path / "storage")


def test_round_trip_exists_size_delete(store):
    path = "company/team/flow/executions/e1/tasks/t/tr/out.bin"
    assert not store.exists(path)
    assert store.put(path, io.BytesIO(b"hello")) == 5
    assert store.exists(path) and store.size(path) == 5
    with store.open(path) as f:
        assert f.read() == b"hello"
    assert store.put(path, b"replaced!") == 9  # overwrite, bytes accepted too
    assert store.open(path).read() == b"replaced!"
    assert store.delete(path) is True
    assert store.delete(path) is False and not store.exists(path)


def test_missing_files(store):
    with pytest.raises(FileNotFoundError, match="no file `nope.txt`"):
        store.open("nope.txt")
    with pytest.raises(FileNotFoundError):
        store.size("nope.txt")


def test_list_is_recursive_and_sorted(store):
    for name in ["b/2.txt", "a/z.txt", "a/deep/x.txt", "c.txt"]:
        store.put(name, io.BytesIO(name.encode()))
    assert store.list("") == ["a/deep/x.txt", "a/z.txt", "b/2.txt", "c.txt"]
    assert store.list("a") == ["a/deep/x.txt", "a/z.txt"]
    assert store.list("a/z.txt") == ["a/z.txt"]
    assert store.list("missing") == []


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside", "a/../../outside", "a/b/../../../x", "..", "C:/x", "a\\..\\..\\x", "bad\0name"])
def test_escaping_paths_are_refused(store, path, tmp_path):
    for op in (lambda: store.put(path, io.BytesIO(b"x")), lambda: store.open(path), lambda: store.exists(path),
               lambda: store.size(path), lambda: store.delete(path), lambda: store.list(path)):
        with pytest.raises(StorageError):
            op()
    assert not (tmp_path / "outside").exists()


def test_symlink_out_of_the_storage_is_refused(store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    store.basePath.mkdir(parents=True)
    (store.basePath / "link").symlink_to(outside)
    with pytest.raises(StorageError, match="outside the storage"):
        store.put("link/evil.txt", io.BytesIO(b"x"))
    assert not (outside / "evil.txt").exists()


def test_empty_path_and_directories_are_refused(store):
    store.put("dir/file.txt", b"x")
    for bad in ("", "."):
        with pytest.raises(StorageError, match="empty storage path"):
            store.put(bad, b"x")
    with pytest.raises(StorageError, match="is a directory"):
        store.put("dir", b"x")
    with pytest.raises(StorageError, match="is a directory"):
        store.delete("dir")
    assert not store.exists("dir")


class FailingSource(io.RawIOBase):
    """A stream that breaks halfway, like a dropped upload."""

    def __init__(self) -> None:
        self.calls = 0

    def read(self, size: int = -1) -> bytes:
        self.calls += 1
        if self.calls > 2:
            raise ConnectionError("upload interrupted")
        return b"x" * 1000


def test_a_failed_write_leaves_the_old_file_and_no_temporary(store):
    store.put("data.txt", b"old")
    with pytest.raises(ConnectionError):
        store.put("data.txt", FailingSource())
    assert store.open("data.txt").read() == b"old"
    assert os.listdir(store.basePath) == ["data.txt"]
    assert store.list("") == ["data.txt"]


class Generated(io.RawIOBase):
    """A deterministic stream of *total* bytes, produced on demand and never held whole."""

    def __init__(self, total: int) -> None:
        self.left = total
        self.largest_read = 0
        self.reads = 0
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            raise AssertionError("the storage must read in chunks, not all at once")
        self.reads += 1
        self.largest_read = max(self.largest_read, size)
        n = min(size, self.left)
        block = bytes([self.reads % 251]) * n
        self.left -= n
        self.digest.update(block)
        return block


def test_large_files_stream_in_chunks_both_ways(store):
    total = 50 * 1024 * 1024
    source = Generated(total)
    tracemalloc.start()
    try:
        assert store.put("big/file.bin", source) == total
        read_back = hashlib.sha256()
        with store.open("big/file.bin") as f:
            while chunk := f.read(CHUNK):
                read_back.update(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert source.largest_read <= CHUNK and source.reads > total // CHUNK
    assert store.size("big/file.bin") == total
    assert read_back.hexdigest() == source.digest.hexdigest()
    assert peak < 10 * CHUNK, f"peak memory {peak} bytes: the file was held in memory"


def test_model_and_registration():
    from tiercel.plugins import load_registry

    assert load_registry(eps=[]).get("storage", "core.Local").cls is Local
    with pytest.raises(Exception, match="basePath"):
        Local()
