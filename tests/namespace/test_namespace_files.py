"""Namespace files: paths normalised and confined (property-based), the CLI and the API, read(),
namespaceFiles on WorkingDirectory, and the core.namespace tasks."""

from __future__ import annotations

import posixpath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tiercel.engine.namespace_files import NamespaceFileError, normalise
from tiercel.testing import TiercelServer, run_flow, task_run, tiercel

SEGMENTS = st.sampled_from(["a", "b.txt", "..", ".", "", "x y", "日本", "\0", "c\\d", "/", "e:"])


def unsafe(raw: str) -> bool:
    """An oracle written apart from normalise(): what must be refused."""
    segments = [p for p in raw.split("/") if p not in ("", ".")]
    return (
        "\0" in raw
        or "\\" in raw
        or raw.startswith("/")
        or ".." in segments
        or not segments
        or not raw.strip()
        or any(ord(c) < 32 for c in raw)
        or (len(segments[0]) == 2 and segments[0][1] == ":" and segments[0][0].isascii() and segments[0][0].isalpha())
    )


def check(raw: str) -> None:
    try:
        path = normalise(raw)
    except NamespaceFileError as exc:
        assert unsafe(raw) and str(exc).startswith("refused namespace file path")  # a refusal always says why
        return
    assert not unsafe(raw)
    assert not path.startswith("/") and "\0" not in path and ".." not in path.split("/")
    assert posixpath.normpath(posixpath.join("/ns", path)).startswith("/ns/")
    assert normalise(path) == path  # already clean: idempotent


@given(st.lists(SEGMENTS, min_size=1, max_size=6).map("/".join))
def test_a_path_is_refused_or_stays_inside_its_namespace(raw):
    check(raw)


@given(st.text(min_size=1, max_size=30))
def test_any_text_is_refused_with_a_reason_or_normalised(raw):
    check(raw)


@pytest.mark.parametrize("bad", ["../etc/passwd", "/etc/passwd", "a/../../b", "a\0b", "C:/x", "a\\..\\b", "", "./"])
def test_escapes_are_refused(bad):
    with pytest.raises(NamespaceFileError, match="namespace file path"):
        normalise(bad)


FLOW = """id: files
namespace: company.team
tasks:
  - id: upload
    type: io.kestra.plugin.core.namespace.UploadFiles
    files:
      queries/daily.sql: "SELECT count(*) FROM orders"
      scripts/run.sh: "echo hi"
  - id: query
    type: core.Return
    format: "{{ read('queries/daily.sql') }}"
  - id: work
    type: core.WorkingDirectory
    namespaceFiles: {enabled: true, include: ["scripts/*"]}
    outputFiles: ["scripts/*", "queries/*"]
    tasks:
      - id: noop
        type: core.Log
        message: working
  - id: fetch
    type: core.namespace.DownloadFiles
    files: ["queries/*"]
  - id: clean
    type: core.namespace.DeleteFiles
    files: ["scripts/**"]
  - id: again
    type: core.namespace.UploadFiles
    conflict: ERROR
    files:
      queries/daily.sql: "SELECT 1"
"""


def test_tasks_read_and_namespace_files_in_a_working_directory(tmp_path):
    ex = run_flow(FLOW, home=tmp_path)
    assert task_run(ex, "upload")["outputs"]["files"] == ["queries/daily.sql", "scripts/run.sh"]
    assert task_run(ex, "query")["outputs"]["value"] == "SELECT count(*) FROM orders"
    assert list(task_run(ex, "work")["outputs"]["outputFiles"]) == ["scripts/run.sh"]  # include honoured
    assert list(task_run(ex, "fetch")["outputs"]["files"]) == ["queries/daily.sql"]
    assert task_run(ex, "clean")["outputs"]["files"] == ["scripts/run.sh"]
    assert (
        task_run(ex, "again")["error"]
        == "namespace file `queries/daily.sql` already exists in `company.team` (conflict: ERROR)"
    )
    listed = tiercel("namespace", "files", "list", "company.team", home=tmp_path)
    assert listed.stdout.split() == ["queries/daily.sql"]


def test_cli_and_api(tmp_path):
    home = tmp_path / "home"
    project = tmp_path / "project"
    (project / "sql").mkdir(parents=True)
    (project / "sql" / "a.sql").write_text("select 1")
    (project / "outside").symlink_to("/etc/hostname")
    refused = tiercel("namespace", "files", "upload", "company", str(project), home=home)
    assert refused.returncode == 1 and "is a link to /etc/hostname, outside" in refused.stderr
    (project / "outside").unlink()
    assert tiercel("namespace", "files", "upload", "company", str(project), home=home).stdout == "+ company/sql/a.sql\n"
    escape = tiercel("namespace", "files", "upload", "company", str(project / "sql" / "a.sql"), "../a.sql", home=home)
    assert escape.returncode == 1 and "`..` would leave the namespace" in escape.stderr
    server = TiercelServer(home).start()
    try:
        api = server.client()
        base = "/api/v1/namespaces/company/files"
        assert api.get(f"{base}/directory").json() == [{"path": "sql/a.sql"}]
        assert api.get(base, params={"path": "sql/a.sql"}).content == b"select 1"
        put = api.post(base, params={"path": "py/etl.py"}, files={"fileContent": ("etl.py", b"print(1)")})
        assert put.status_code == 204, put.text
        assert api.get(base, params={"path": "../x"}).status_code == 400
        assert api.delete(base, params={"path": "sql/a.sql"}).status_code == 204
        assert api.get(base, params={"path": "sql/a.sql"}).status_code == 404
    finally:
        server.stop()
    got = tiercel("namespace", "files", "download", "company", "py/etl.py", home=home)
    assert got.stdout == "print(1)"


def test_the_guide_runs_as_written(tmp_path):
    import re
    from pathlib import Path

    guide = (Path(__file__).parents[2] / "docs" / "user" / "namespace-files.md").read_text()
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "run.sh").write_text("echo hi\n")
    console = re.search(r"```console\n(.*?)```", guide, re.S).group(1)
    import subprocess

    for command, expected in re.findall(r"^\$ (.*?)(?:  +#.*)?\n((?:[^$].*\n)*)", console, re.M):
        if command.startswith("tiercel "):
            out = tiercel(*command.split()[1:], home=home, cwd=cwd)
        else:
            out = subprocess.run(command, shell=True, cwd=cwd, capture_output=True, text=True)
        assert out.returncode == 0, (command, out.stderr)
        assert out.stdout == expected, command
    logs: list = []
    ex = run_flow(re.search(r"```yaml\n(.*?)```", guide, re.S).group(1), home=home, logs=logs)
    assert ("query", "INFO", "running: SELECT count(*) FROM orders\n") in logs  # the file as `echo` wrote it
    assert list(task_run(ex, "work")["outputs"]["outputFiles"]) == ["queries/daily.sql"]


def test_flows_deploy_syncs_each_namespace_files_folder(tmp_path):
    repo, home = tmp_path / "repo", tmp_path / "home"
    (repo / "company.team" / "_files" / "sql").mkdir(parents=True)
    (repo / "company.team" / "report.yaml").write_text("""id: report
namespace: company.team
tasks:
  - id: q
    type: core.Return
    format: "{{ read('sql/q.sql') }}"
""")
    (repo / "company.team" / "_files" / "sql" / "q.sql").write_text("select 42")
    (repo / "company.team" / "_files" / "config.yaml").write_text("not: a flow")  # never read as a flow
    deployed = tiercel("flows", "deploy", str(repo), home=home)
    assert deployed.returncode == 0, deployed.stderr
    assert "synced company.team files: 2 uploaded, 0 deleted" in deployed.stdout
    (repo / "company.team" / "_files" / "config.yaml").unlink()
    again = tiercel("flows", "deploy", str(repo), "--delete", home=home)
    assert "synced company.team files: 1 uploaded, 1 deleted" in again.stdout
    ex = run_flow(repo / "company.team" / "report.yaml", home=home)
    assert task_run(ex, "q")["outputs"]["value"] == "select 42"
