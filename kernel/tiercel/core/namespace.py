"""Tasks on namespace files (``core.namespace.*``, Kestra's ``io.kestra.plugin.core.namespace.*``)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from tiercel.api import Example, RunContext, Task, TaskError


def _paths(ctx: RunContext, namespace: str, globs: list[str]) -> list[str]:
    return ctx.namespace_files.list(namespace, include=globs)


class UploadFiles(Task):
    """Store files as namespace files: `tiercel://` files (outputs of earlier tasks) or inline text,
    or files of the working directory (inside a `core.WorkingDirectory`) matched by globs."""

    type: ClassVar[str] = "core.namespace.UploadFiles"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.namespace.UploadFiles",)
    examples: ClassVar[list[Example]] = [
        Example(
            "Keep a generated query as a namespace file",
            """\
id: upload_example
namespace: company.team
tasks:
  - id: upload
    type: core.namespace.UploadFiles
    files:
      queries/daily.sql: "select count(*) from orders where day = current_date"
  - id: show
    type: core.Log
    message: "{{ read('queries/daily.sql') }}"
""",
        )
    ]

    files: dict[str, str] | list[str] = Field(
        description="Destination path to a `tiercel://` URI or inline text; or globs of working-directory files."
    )
    namespace: str | None = Field(None, description="Namespace to store them in; default: the flow's.")
    destination: str = Field("", description="Folder the files go in (prefixed to each destination path).")
    conflict: Literal["OVERWRITE", "ERROR", "SKIP"] = Field(
        "OVERWRITE", description="What to do when a file exists: OVERWRITE, ERROR (fail the task) or SKIP."
    )

    def run(self, ctx: RunContext) -> dict[str, Any]:
        namespace = self.namespace or ctx.namespace
        store = ctx.namespace_files
        sources: dict[str, Any] = {}
        if isinstance(self.files, dict):
            for name, source in self.files.items():
                sources[name] = ctx.open_file(source).read() if source.startswith("tiercel://") else source.encode()
        else:
            root = ctx.working_dir
            for glob in self.files:
                for path in sorted(root.glob(glob)):
                    if path.is_file():
                        sources[path.relative_to(root).as_posix()] = path
        existing = set(store.list(namespace))
        stored = []
        for name, source in sources.items():
            try:
                path = store.normalise(f"{self.destination}/{name}" if self.destination else name)
            except ValueError as exc:
                raise TaskError(str(exc)) from None
            if path in existing and self.conflict != "OVERWRITE":
                if self.conflict == "ERROR":
                    raise TaskError(f"namespace file `{path}` already exists in `{namespace}` (conflict: ERROR)")
                continue
            store.put(namespace, path, source)
            stored.append(path)
        return {"files": stored}


class DownloadFiles(Task):
    """Copy namespace files into this execution's storage (`outputs.<id>.files`: path to `tiercel://` URI)."""

    type: ClassVar[str] = "core.namespace.DownloadFiles"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.namespace.DownloadFiles",)
    examples: ClassVar[list[Example]] = [
        Example(
            "Hand the namespace's SQL files to later tasks",
            """\
id: download_example
namespace: company.team
tasks:
  - id: sql
    type: core.namespace.DownloadFiles
    files: ["queries/*.sql"]
  - id: show
    type: core.Log
    message: "{{ outputs.sql.files | length }} queries"
""",
        )
    ]

    files: list[str] = Field(description="Globs of the namespace files to copy (`*` also crosses `/`).")
    namespace: str | None = Field(None, description="Namespace to read; default: the flow's.")

    def run(self, ctx: RunContext) -> dict[str, Any]:
        namespace = self.namespace or ctx.namespace
        out = {}
        for path in _paths(ctx, namespace, self.files):
            with ctx.namespace_files.open(namespace, path) as stream:
                out[path] = ctx.put_file(stream.read(), path.replace("/", "_"))
        return {"files": out}


class DeleteFiles(Task):
    """Delete namespace files matched by globs (`outputs.<id>.files` lists them)."""

    type: ClassVar[str] = "core.namespace.DeleteFiles"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.core.namespace.DeleteFiles",)
    examples: ClassVar[list[Example]] = [
        Example(
            "Remove temporary files",
            """\
id: delete_example
namespace: company.team
tasks:
  - id: clean
    type: core.namespace.DeleteFiles
    files: ["tmp/**"]
""",
        )
    ]

    files: list[str] = Field(description="Globs of the namespace files to delete (`*` also crosses `/`).")
    namespace: str | None = Field(None, description="Namespace to delete from; default: the flow's.")

    def run(self, ctx: RunContext) -> dict[str, Any]:
        namespace = self.namespace or ctx.namespace
        deleted = [path for path in _paths(ctx, namespace, self.files) if ctx.namespace_files.delete(namespace, path)]
        return {"files": deleted}
