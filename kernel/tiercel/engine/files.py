"""File work the engine does for flowables, off the executor: split a file into batches, fill and
empty a shared working directory."""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from tiercel.engine.storage import InternalStorage
from tiercel.model import Execution, TaskRun

_UNITS = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3}


def parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?B)?\s*", text.upper())
    if not match:
        raise ValueError(f"invalid size {text!r} (expected e.g. 10MB)")
    return int(match.group(1)) * _UNITS[match.group(2) or "B"]


def workdir_path(home: Path, tr: TaskRun) -> Path:
    return home / "workdirs" / (tr.meta.workdir or tr.id)


def do(kind: str, storage: InternalStorage, home: Path, ex: Execution, tr: TaskRun, params: dict[str, Any]) -> Any:
    """Carry out one piece of file work a flowable asked for; returns its result."""
    if kind == "split":
        return split_items(storage, ex, tr, params)
    if kind == "write":
        write_input_files(storage, home, ex, tr, params["files"])
        return {}
    if kind == "collect":
        return collect_output_files(storage, home, ex, tr, params["globs"])
    if kind == "namespace":
        return copy_namespace_files(storage, home, ex, tr, params.get("include"), params.get("exclude"))
    if kind == "lines":  # the items of a stored file, one per line (a loop over a file)
        with storage.open(params["uri"], ex.namespace) as fh:
            return [line for line in fh.read().decode("utf-8").splitlines() if line != ""]
    if kind == "cache_restore":
        return restore_cache(storage, home, ex, tr, params.get("ttl"))
    if kind == "cache_save":
        return save_cache(storage, home, ex, tr, params["patterns"])
    raise ValueError(f"unknown file work `{kind}`")


def _cache_uri(ex: Execution, tr: TaskRun) -> str:
    from tiercel.engine.storage import SCHEME, namespace_path

    return f"{SCHEME}{namespace_path(ex.namespace)}/{ex.flow_id}/{tr.task_id}/cache/cache.zip"


def restore_cache(storage: InternalStorage, home: Path, ex: Execution, tr: TaskRun, ttl: float | None) -> dict[str, Any]:
    """Unpack a WorkingDirectory's cache into its directory, unless missing or older than *ttl* seconds."""
    import io
    import time
    import zipfile

    uri = _cache_uri(ex, tr)
    if not storage.exists(uri):
        return {"restored": False}
    with storage.open(uri, ex.namespace) as fh:
        data = fh.read()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        made = float(archive.comment.decode() or 0)
        if ttl is not None and time.time() - made > ttl:
            return {"restored": False, "expired": True}
        root = workdir_path(home, tr)
        root.mkdir(parents=True, exist_ok=True)
        for info in archive.infolist():
            target = (root / info.filename).resolve()
            if root.resolve() not in target.parents:
                raise ValueError(f"cache entry {info.filename!r} escapes the working directory")
            archive.extract(info, root)
            mode = info.external_attr >> 16
            if mode and not info.is_dir():
                os.chmod(target, mode & 0o777)
    return {"restored": True}


def save_cache(storage: InternalStorage, home: Path, ex: Execution, tr: TaskRun, patterns: list[str]) -> dict[str, Any]:
    """Zip the files matching *patterns* in the working directory as its cache (modes kept, links followed)."""
    import io
    import time
    import zipfile

    root = workdir_path(home, tr)
    names: set[str] = set()
    for pattern in patterns:
        for path in glob.glob(str(root / pattern), recursive=True):
            if Path(path).is_file():
                names.add(Path(path).relative_to(root).as_posix())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.comment = str(time.time()).encode()
        for name in sorted(names):
            archive.write(root / name, name)
    storage.put(_cache_uri(ex, tr), buffer.getvalue())
    return {"files": len(names)}


def split_items(storage: InternalStorage, ex: Execution, tr: TaskRun, params: dict[str, Any]) -> list[str]:
    """Split a `tiercel://` file into batch files; returns their URIs in order."""
    separator = params.get("separator") or "\n"
    with storage.open(params["items"], ex.namespace) as fh:
        items = [item for item in fh.read().decode("utf-8").split(separator) if item != ""]
    groups: list[list[str]] = []
    if params.get("partitions"):
        n = max(1, int(params["partitions"]))
        size = -(-len(items) // n) if items else 0
        groups = [items[i:i + size] for i in range(0, len(items), size)] if size else []
    elif params.get("bytes"):
        limit, used = parse_size(params["bytes"]), 0
        current: list[str] = []
        for item in items:
            if current and used + len(item) + 1 > limit:
                groups.append(current)
                current, used = [], 0
            current.append(item)
            used += len(item) + 1
        if current:
            groups.append(current)
    else:
        rows = int(params.get("rows") or 1)
        groups = [items[i:i + rows] for i in range(0, len(items), rows)]
    uris = []
    for i, group in enumerate(groups):
        uri = storage.task_uri(ex.namespace, ex.flow_id, ex.id, tr.task_id, tr.id, f"batch-{i}.txt")
        storage.put(uri, (separator.join(group) + separator).encode())
        uris.append(uri)
    return uris


def write_input_files(storage: InternalStorage, home: Path, ex: Execution, tr: TaskRun, files: Any) -> None:
    """Write a WorkingDirectory's inputFiles (name -> inline content or tiercel:// URI)."""
    if isinstance(files, str):
        files = json.loads(files)
    root = workdir_path(home, tr)
    root.mkdir(parents=True, exist_ok=True)
    for name, content in (files or {}).items():
        target = (root / name).resolve()
        if root.resolve() not in target.parents:
            raise ValueError(f"input file {name!r} escapes the working directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str) and content.startswith("tiercel://"):
            with storage.open(content, ex.namespace) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            target.write_text(content if isinstance(content, str) else json.dumps(content))


def collect_output_files(storage: InternalStorage, home: Path, ex: Execution, tr: TaskRun,
                         globs: list[str]) -> dict[str, str]:
    """Upload files matching *globs* in the working directory; returns name -> tiercel:// URI."""
    root = workdir_path(home, tr)
    found: dict[str, str] = {}
    for pattern in globs:
        for path in sorted(glob.glob(str(root / pattern), recursive=True)):
            file = Path(path)
            if file.is_file():
                name = file.relative_to(root).as_posix()
                uri = storage.task_uri(ex.namespace, ex.flow_id, ex.id, tr.task_id, tr.id, name)
                storage.put(uri, file)
                found[name] = uri
    return found


def copy_namespace_files(storage: InternalStorage, home: Path, ex: Execution, tr: TaskRun,
                         include: list[str] | None, exclude: list[str] | None) -> list[str]:
    """Copy the execution's namespace files selected by the globs into the shared working directory."""
    from tiercel.engine.namespace_files import NamespaceFiles

    files = NamespaceFiles(storage)
    target = workdir_path(home, tr)
    names = files.list(ex.namespace, include, exclude)
    for name in names:
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with files.open(ex.namespace, name) as src, open(path, "wb") as out:
            shutil.copyfileobj(src, out)
    return names


def flow_state(storage: InternalStorage, ex: Execution, action: str, name: str, namespace_wide: bool,
               value: str | None, data: dict[str, Any] | None = None, error_on_missing: bool = False) -> Any:
    """Kestra's deprecated state store (state.Get|Set|Delete): a JSON map per name, kept in internal
    storage under ``<namespace>/[<flow>/]states/<name>/<value>.json`` (the flow's own unless
    *namespace_wide*), one per task run value when *value* is given."""
    import hashlib
    import json

    from tiercel.engine.storage import SCHEME, namespace_path

    key = hashlib.sha1(value.encode()).hexdigest()[:16] if value else "default"
    scope = namespace_path(ex.namespace) + ("" if namespace_wide else f"/{ex.flow_id}")
    uri = f"{SCHEME}{scope}/states/{_state_name(name)}/{key}.json"
    current: dict[str, Any] | None = None
    if storage.exists(uri):
        current = json.loads(storage.read_text(uri, ex.namespace))
    if action == "get":
        if current is None and error_on_missing:
            raise ValueError(f"no state `{name}`")
        return {"data": current or {}, "count": len(current or {})}
    if action == "delete":
        if current is None:
            if error_on_missing:
                raise ValueError(f"no state `{name}`")
            return {"deleted": False}
        return {"deleted": storage.delete(uri)}
    merged = {**(current or {}), **(data or {})}
    storage.put(uri, json.dumps(merged, separators=(",", ":"), default=str).encode())
    return {"count": len(merged), "key": uri}


def _state_name(name: str) -> str:
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"state name `{name}` must be a plain name")
    return name
