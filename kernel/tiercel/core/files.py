"""Core tasks on internal-storage files (Kestra's ``core.storage.*``): write, concat, split, size,
delete, reverse, filter and deduplicate items, purge this execution's files.

A file holds one item per line (``separator``); FilterItems and DeduplicateItems read each line
as JSON when it parses, else as text, and write items back one per line.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from tiercel.api import Example, RunContext, Task, TaskError
from tiercel.core._common import Text

_STORAGE = "io.kestra.plugin.core.storage."


def _read_items(ctx: RunContext, uri: str, separator: str = "\n") -> list[str]:
    with ctx.open_file(uri) as fh:
        text = fh.read().decode("utf-8")
    items = text.split(separator)
    if items and items[-1] == "":
        items.pop()  # a trailing separator ends the last item, it does not start one
    return items


def _write_items(ctx: RunContext, items: list[str], name: str, separator: str = "\n") -> str:
    return ctx.put_file("".join(item + separator for item in items).encode("utf-8"), name)


def _parse(item: str) -> Any:
    try:
        return json.loads(item)
    except ValueError:
        return item


def _name(extension: str, base: str = "result") -> str:
    return base + (extension if extension.startswith(".") else "." + extension)


class Write(Task):
    """Write ``content`` to a new internal-storage file; its URI is ``outputs.<id>.uri``."""

    type: ClassVar[str] = "core.storage.Write"
    aliases: ClassVar[tuple[str, ...]] = (_STORAGE + "Write",)
    examples: ClassVar[list[Example]] = [
        Example("Write a small CSV, then read it back", """\
id: write_example
namespace: company.team
tasks:
  - id: write
    type: core.storage.Write
    content: |
      name,score
      ada,3
    extension: .csv
  - id: show
    type: core.Log
    message: "{{ read(outputs.write.uri) }}"
"""),
    ]

    content: Text = Field(description="What to write (text; a map or a list is written as JSON).")
    extension: str = Field(".ion", description="File name extension of the new file.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        return {"uri": ctx.put_file(self.content.encode("utf-8"), _name(self.extension))}


class Concat(Task):
    """Concatenate several files, in order, into one (optionally with a ``separator`` between them)."""

    type: ClassVar[str] = "core.storage.Concat"
    aliases: ClassVar[tuple[str, ...]] = (_STORAGE + "Concat", "io.kestra.core.tasks.storages.Concat")
    examples: ClassVar[list[Example]] = [
        Example("Join two written files", """\
id: concat_example
namespace: company.team
tasks:
  - {id: a, type: core.storage.Write, content: "first"}
  - {id: b, type: core.storage.Write, content: "second"}
  - id: both
    type: core.storage.Concat
    files: ["{{ outputs.a.uri }}", "{{ outputs.b.uri }}"]
    separator: "\\n"
"""),
    ]

    files: list[str] | Text = Field(description="URIs of the files, in order: a list or a JSON array string.")
    separator: str | None = Field(None, description="Text written between two files.")
    extension: str = Field(".tmp", description="File name extension of the result.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        files = json.loads(self.files) if isinstance(self.files, str) else self.files
        parts = []
        for uri in files:
            with ctx.open_file(uri) as fh:
                parts.append(fh.read())
        joined = (self.separator or "").encode("utf-8").join(parts)
        return {"uri": ctx.put_file(joined, _name(self.extension))}


class Split(Task):
    """Split a file into several, by ``rows``, ``bytes`` or ``partitions``; their URIs are ``outputs.<id>.uris``."""

    type: ClassVar[str] = "core.storage.Split"
    aliases: ClassVar[tuple[str, ...]] = (_STORAGE + "Split", "io.kestra.core.tasks.storages.Split")
    examples: ClassVar[list[Example]] = [
        Example("Two lines per file", """\
id: split_example
namespace: company.team
tasks:
  - {id: data, type: core.storage.Write, content: "1\\n2\\n3\\n"}
  - {id: split, type: core.storage.Split, from: "{{ outputs.data.uri }}", rows: 2}
"""),
    ]

    from_: Text = Field(alias="from", description="URI of the file to split.")
    rows: int | None = Field(None, ge=1, description="Items per file.")
    bytes: str | None = Field(None, description="Maximum size of a file, e.g. `10KB`, `1MB`.")
    partitions: int | None = Field(None, ge=1, description="Number of files of equal item count.")
    separator: str = Field("\n", description="What separates items.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        chosen = [n for n in ("rows", "bytes", "partitions") if getattr(self, n) is not None]
        if len(chosen) != 1:
            raise TaskError("set exactly one of rows, bytes and partitions")
        items = _read_items(ctx, self.from_, self.separator)
        groups: list[list[str]] = []
        if self.rows:
            groups = [items[i:i + self.rows] for i in range(0, len(items), self.rows)]
        elif self.partitions:
            size = -(-len(items) // self.partitions) or 1
            groups = [items[i:i + size] for i in range(0, len(items), size)]
        else:
            limit, current, used = _size(str(self.bytes)), [], 0
            for item in items:
                length = len(item.encode("utf-8")) + len(self.separator)
                if current and used + length > limit:
                    groups.append(current)
                    current, used = [], 0
                current.append(item)
                used += length
            if current:
                groups.append(current)
        return {"uris": [_write_items(ctx, g, f"split-{i}.tmp", self.separator) for i, g in enumerate(groups)]}


def _size(text: str) -> int:
    units = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3}
    upper = text.strip().upper()
    for unit in ("GB", "MB", "KB", "B"):
        if upper.endswith(unit):
            return int(float(upper[:-len(unit)]) * units[unit])
    return int(upper)


class Size(Task):
    """The size in bytes of an internal-storage file, ``outputs.<id>.size``."""

    type: ClassVar[str] = "core.storage.Size"
    aliases: ClassVar[tuple[str, ...]] = (_STORAGE + "Size", "io.kestra.core.tasks.storages.Size")
    examples: ClassVar[list[Example]] = [
        Example("Size of a written file", """\
id: size_example
namespace: company.team
tasks:
  - {id: data, type: core.storage.Write, content: hello}
  - {id: size, type: core.storage.Size, uri: "{{ outputs.data.uri }}"}
"""),
    ]

    uri: Text = Field(description="URI of the file.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        with ctx.open_file(self.uri) as fh:
            size = fh.seek(0, 2)
        return {"size": size}


class Delete(Task):
    """Delete an internal-storage file of this namespace."""

    type: ClassVar[str] = "core.storage.Delete"
    aliases: ClassVar[tuple[str, ...]] = (_STORAGE + "Delete", "io.kestra.core.tasks.storages.Delete")
    examples: ClassVar[list[Example]] = [
        Example("Delete a temporary file", """\
id: delete_example
namespace: company.team
tasks:
  - {id: data, type: core.storage.Write, content: temporary}
  - {id: delete, type: core.storage.Delete, uri: "{{ outputs.data.uri }}"}
"""),
    ]

    uri: Text = Field(description="URI of the file.")
    errorOnMissing: bool = Field(False, description="Fail when the file does not exist.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        deleted = ctx.delete_file(self.uri)
        if not deleted and self.errorOnMissing:
            raise TaskError(f"file {self.uri} does not exist")
        return {"uri": self.uri, "deleted": deleted}


class Reverse(Task):
    """Write the items of a file in reverse order."""

    type: ClassVar[str] = "core.storage.Reverse"
    aliases: ClassVar[tuple[str, ...]] = (_STORAGE + "Reverse",)
    examples: ClassVar[list[Example]] = [
        Example("Last line first", """\
id: reverse_example
namespace: company.team
tasks:
  - {id: data, type: core.storage.Write, content: "1\\n2\\n3\\n"}
  - {id: reverse, type: core.storage.Reverse, from: "{{ outputs.data.uri }}"}
"""),
    ]

    from_: Text = Field(alias="from", description="URI of the file.")
    separator: str = Field("\n", description="What separates items.")
    extension: str = Field(".tmp", description="File name extension of the result.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        items = _read_items(ctx, self.from_, self.separator)
        return {"uri": _write_items(ctx, items[::-1], _name(self.extension), self.separator)}


class FilterItems(Task):
    """Keep (``INCLUDE``) or drop (``EXCLUDE``) the items for which ``filterCondition`` is true.

    The condition is rendered for each item, read as ``{{ value }}``.
    """

    type: ClassVar[str] = "core.storage.FilterItems"
    aliases: ClassVar[tuple[str, ...]] = (_STORAGE + "FilterItems",)
    static_fields: ClassVar[frozenset[str]] = Task.static_fields | {"filterCondition"}
    examples: ClassVar[list[Example]] = [
        Example("Keep the big orders", """\
id: filter_example
namespace: company.team
tasks:
  - id: orders
    type: core.storage.Write
    content: |
      {"id": 1, "total": 5}
      {"id": 2, "total": 50}
  - id: big
    type: core.storage.FilterItems
    from: "{{ outputs.orders.uri }}"
    filterCondition: "{{ value.total > 10 }}"
"""),
    ]

    from_: Text = Field(alias="from", description="URI of the file.")
    filterCondition: str = Field(description="Expression rendered per item (`{{ value }}`); truthy means it matches.")
    filterType: Literal["INCLUDE", "EXCLUDE"] = Field("INCLUDE", description="Keep or drop the items that match.")
    errorOrNullBehavior: Literal["FAIL", "INCLUDE", "EXCLUDE"] = Field(
        "FAIL", description="What to do with an item whose condition fails or gives null.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        from tiercel.expr import truthy

        kept: list[str] = []
        items = _read_items(ctx, self.from_)
        for item in items:
            try:
                result = ctx.render(self.filterCondition, value=_parse(item))
            except Exception:
                if self.errorOrNullBehavior == "FAIL":
                    raise
                result = None
            if result is None:
                if self.errorOrNullBehavior == "FAIL":
                    raise TaskError(f"filterCondition gave null for item {item!r}")
                keep = self.errorOrNullBehavior == "INCLUDE"
            else:
                keep = truthy(result) == (self.filterType == "INCLUDE")
            if keep:
                kept.append(item)
        return {"uri": _write_items(ctx, kept, "filtered.tmp"), "processedItemsTotal": len(items),
                "droppedItemsTotal": len(items) - len(kept)}


class DeduplicateItems(Task):
    """Keep the last item of each key (``expr``, rendered per item as ``{{ value }}``), in first-seen order."""

    type: ClassVar[str] = "core.storage.DeduplicateItems"
    aliases: ClassVar[tuple[str, ...]] = (_STORAGE + "DeduplicateItems",)
    static_fields: ClassVar[frozenset[str]] = Task.static_fields | {"expr"}
    examples: ClassVar[list[Example]] = [
        Example("One row per id, the latest wins", """\
id: dedup_example
namespace: company.team
tasks:
  - id: rows
    type: core.storage.Write
    content: |
      {"id": 1, "v": "old"}
      {"id": 1, "v": "new"}
  - id: dedup
    type: core.storage.DeduplicateItems
    from: "{{ outputs.rows.uri }}"
    expr: "{{ value.id }}"
"""),
    ]

    from_: Text = Field(alias="from", description="URI of the file.")
    expr: str = Field(description="Expression giving an item's key (`{{ value }}` is the item).")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        last: dict[str, str] = {}
        items = _read_items(ctx, self.from_)
        for item in items:
            key = json.dumps(ctx.render(self.expr, value=_parse(item)), default=str)
            last.pop(key, None)
            last[key] = item
        return {"uri": _write_items(ctx, list(last.values()), "deduplicated.tmp"), "numKeys": len(last),
                "processedItemsTotal": len(items)}


class PurgeCurrentExecutionFiles(Task):
    """Delete every internal-storage file of the current execution (inputs, outputs, task files)."""

    type: ClassVar[str] = "core.storage.PurgeCurrentExecutionFiles"
    aliases: ClassVar[tuple[str, ...]] = (_STORAGE + "PurgeCurrentExecutionFiles", _STORAGE + "PurgeExecution",
                                          "io.kestra.core.tasks.storages.PurgeExecution")
    examples: ClassVar[list[Example]] = [
        Example("Clean up at the end", """\
id: purge_example
namespace: company.team
tasks:
  - {id: data, type: core.storage.Write, content: temporary}
  - {id: purge, type: core.storage.PurgeCurrentExecutionFiles}
"""),
    ]

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        prefix = f"tiercel://{ctx.namespace.replace('.', '/')}/{ctx.flow_id}/executions/{ctx.execution_id}/"
        uris = ctx.list_files(prefix)
        for uri in uris:
            ctx.delete_file(uri)
        return {"uris": uris}


class LocalFiles(Task):
    """Kestra's deprecated LocalFiles: create ``inputs`` files, keep ``outputs`` globs as ``outputs.<id>.uris``.

    Prefer ``core.WorkingDirectory`` with ``inputFiles`` and ``outputFiles``; inside one, the files
    are shared with the tasks that follow.
    """

    type: ClassVar[str] = "core.storage.LocalFiles"
    aliases: ClassVar[tuple[str, ...]] = (_STORAGE + "LocalFiles", "io.kestra.core.tasks.storages.LocalFiles")
    examples: ClassVar[list[Example]] = [
        Example("Create a file and keep it", """\
id: local_files_example
namespace: company.team
tasks:
  - id: files
    type: core.storage.LocalFiles
    inputs:
      hello.txt: hello
    outputs:
      - "*.txt"
"""),
    ]

    inputs: dict[str, Text] | None = Field(None, description="Files to create: name to content (or a `tiercel://` URI).")
    outputs: list[str] | None = Field(None, description="Globs of files to upload to internal storage.")

    @field_validator("outputs", mode="before")
    @classmethod
    def _one_glob(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) and "{{" not in value else value

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        root = ctx.working_dir
        for name, content in (self.inputs or {}).items():
            target = (root / name).resolve()
            if not target.is_relative_to(root.resolve()):
                raise TaskError(f"input file `{name}` escapes the working directory")
            target.parent.mkdir(parents=True, exist_ok=True)
            if content.startswith("tiercel://"):
                with ctx.open_file(content) as fh:
                    target.write_bytes(fh.read())
            else:
                target.write_text(content)
        uris: dict[str, str] = {}
        for pattern in self.outputs or []:
            for path in sorted(root.glob(pattern)):
                if path.is_file():
                    rel = str(path.relative_to(root))
                    uris[rel] = ctx.put_file(path, rel)
        return {"uris": uris}


#: Every task of this module, for the plugin's registration.
TASKS = (Write, Concat, Split, Size, Delete, Reverse, FilterItems, DeduplicateItems, PurgeCurrentExecutionFiles,
         LocalFiles)
