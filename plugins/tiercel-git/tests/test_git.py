"""git.Clone, git.Push and git.SyncFlows against real repositories (file://, git daemon) and a real server."""

from __future__ import annotations

import pytest

from tiercel.testing import TiercelServer, run_flow, task_run


def flow(tasks: str) -> str:
    return f"id: git_test\nnamespace: company.team\ntasks:\n{tasks}"


def test_clone_a_branch_shallow_with_submodules_then_read_it(git_daemon, repos, tmp_path):
    url, served = git_daemon
    repos.make(served, "lib", {"lib.txt": "library\n"})
    work = tmp_path / "app-clone"
    repos.make(tmp_path, "app", {"README": "app\n"}, {"dev": {"README": "app on dev\n"}})
    repos.git("clone", "--quiet", str(tmp_path / "app.git"), str(work))
    repos.git("checkout", "--quiet", "dev", cwd=work)
    repos.git("submodule", "--quiet", "add", f"{url}/lib.git", "vendor/lib", cwd=work)
    repos.git("commit", "--quiet", "-m", "submodule", cwd=work)
    repos.git("push", "--quiet", "origin", "dev", cwd=work)
    ex = run_flow(
        flow(f"""\
  - id: work
    type: core.WorkingDirectory
    tasks:
      - id: clone
        type: io.kestra.plugin.git.Clone
        url: file://{tmp_path}/app.git
        branch: dev
        directory: src
        cloneSubmodules: true
      - id: read
        type: scripts.Shell
        commands:
          - cat src/README src/vendor/lib/lib.txt
          - git -C src rev-list --count HEAD
"""),
        home=tmp_path / "home",
        logs=(lines := []),
    )
    assert ex["state"] == "SUCCESS", ex
    printed = [m for _, _, m in lines]
    assert "app on dev" in printed and "library" in printed and "1" in printed  # depth 1 by default
    assert task_run(ex, "clone")["outputs"]["commit"] == repos.git("rev-parse", "dev", cwd=tmp_path / "app.git").strip()


def test_clone_errors_are_clear_and_hide_credentials(repos, tmp_path):
    ex = run_flow(
        flow(f"""\
  - id: missing
    type: git.Clone
    url: https://user:t0ps3cret@127.0.0.1:9/nope.git
    allowFailure: true
  - id: no_branch
    type: git.Clone
    url: file://{repos.make(tmp_path, "r", {"a": "1"})}
    branch: nope
"""),
        home=tmp_path / "home",
    )
    error = task_run(ex, "missing")["error"]
    assert "git clone" in error and "https://***@127.0.0.1:9/nope.git" in error and "t0ps3cret" not in str(ex)
    assert "Remote branch nope not found" in task_run(ex, "no_branch")["error"]


def test_push_commits_with_author_and_tag_over_git_daemon(git_daemon, repos, tmp_path):
    url, served = git_daemon
    repos.make(served, "reports", {"a.txt": "1\n"})
    ex = run_flow(
        flow(f"""\
  - id: work
    type: core.WorkingDirectory
    tasks:
      - id: clone
        type: git.Clone
        url: {url}/reports.git
        directory: repo
      - id: write
        type: scripts.Shell
        commands: ["echo 2 > repo/b.txt", "echo changed > repo/a.txt"]
      - id: push
        type: io.kestra.plugin.git.Push
        url: {url}/reports.git
        directory: repo
        commitMessage: "report {{{{ execution.id }}}}"
        author: {{name: Reports, email: reports@example.com}}
        tag: v1
      - id: again
        type: git.Push
        url: {url}/reports.git
        directory: repo
        branch: feature
        commitMessage: nothing new
"""),
        home=tmp_path / "home",
    )
    assert ex["state"] == "SUCCESS", ex
    bare = served / "reports.git"
    head = repos.git("log", "-1", "--format=%an <%ae>|%s", "main", cwd=bare).strip()
    assert head == f"Reports <reports@example.com>|report {ex['id']}"
    assert (
        repos.git("show", "main:b.txt", cwd=bare) == "2\n" and repos.git("show", "main:a.txt", cwd=bare) == "changed\n"
    )
    assert repos.git("rev-parse", "v1^{commit}", cwd=bare).strip() == task_run(ex, "push")["outputs"]["commit"]
    assert task_run(ex, "again")["outputs"] == {"commit": None, "pushed": False, "branch": "feature"}
    assert repos.git("rev-parse", "feature", cwd=bare) == repos.git("rev-parse", "main", cwd=bare)


FLOW = "id: {id}\nnamespace: {ns}\ntasks:\n  - id: log\n    type: core.Log\n    message: {msg}\n"


@pytest.mark.slow
def test_sync_flows_deploys_updates_deletes_and_dry_runs(repos, tmp_path):
    repo = repos.make(
        tmp_path,
        "flows",
        {
            "flows/a.yaml": FLOW.format(id="a", ns="company.team", msg="v1"),
            "flows/sub/b.yml": FLOW.format(id="b", ns="company.team.sub", msg="v1"),
            "flows/other.yaml": FLOW.format(id="other", ns="elsewhere", msg="v1"),
            "README.md": "not a flow\n",
        },
    )
    server = TiercelServer(tmp_path / "home").start()
    sync = f"""\
id: sync
namespace: system
tasks:
  - id: sync
    type: git.SyncFlows
    url: file://{repo}
    gitDirectory: flows
    targetNamespace: company.team
    delete: true
    dryRun: "{{{{ inputs.dry ?? false }}}}"
    serverUrl: {server.url}
inputs:
  - {{id: dry, type: BOOLEAN, defaults: false}}
"""
    try:
        server.deploy(FLOW.format(id="stale", ns="company.team", msg="old"))
        server.deploy(FLOW.format(id="keep", ns="elsewhere", msg="old"))
        server.deploy(sync)
        with server.client() as api:

            def run(dry: bool) -> dict:
                ex = api.post("/api/v1/executions/system/sync", params={"wait": True}, json={"dry": dry}).json()
                assert ex["state"] == "SUCCESS", ex
                return task_run(ex, "sync")["outputs"]

            def names() -> set[str]:
                return {
                    f"{f['namespace']}.{f['id']}"
                    for f in api.get("/api/v1/flows/search", params={"size": 100}).json()["results"]
                }

            dry = run(True)
            assert dry["created"] == ["company.team.a", "company.team.sub.b"] and dry["deleted"] == [
                "company.team.stale"
            ]
            assert "company.team.a" not in names()
            first = run(False)
            assert first["created"] == ["company.team.a", "company.team.sub.b"] and first["deleted"] == [
                "company.team.stale"
            ]
            assert names() == {"company.team.a", "company.team.sub.b", "elsewhere.keep", "system.sync"}
            work = tmp_path / "flows-work"
            (work / "flows/a.yaml").write_text(FLOW.format(id="a", ns="company.team", msg="v2"))
            repos.git("commit", "--quiet", "-am", "v2", cwd=work)
            repos.git("push", "--quiet", str(repo), "main", cwd=work)
            second = run(False)
            assert second["updated"] == ["company.team.a"] and second["created"] == [] and second["deleted"] == []
            assert "v2" in api.get("/api/v1/flows/company.team/a").json()["source"]
    finally:
        server.stop()


def test_sync_flows_refuses_an_invalid_flow_file(repos, tmp_path):
    repo = repos.make(
        tmp_path, "bad", {"_flows/x.yaml": "id: x\nnamespace: a\ntasks:\n  - id: t\n    type: core.Nope\n"}
    )
    ex = run_flow(
        flow(f"""\
  - id: sync
    type: git.SyncFlows
    url: file://{repo}
    serverUrl: http://127.0.0.1:9
"""),
        home=tmp_path / "home",
    )
    error = task_run(ex, "sync")["error"]
    assert "deploying the flows of _flows failed" in error and "_flows/x.yaml:5" in error and "core.Nope" in error


def test_clone_and_push_over_ssh_with_a_key_from_secrets(sshd, repos, tmp_path, monkeypatch):
    monkeypatch.setenv("TIERCEL_SECRET_GIT_KEY", sshd["key"])
    monkeypatch.setenv("TIERCEL_SECRET_GIT_PASSPHRASE", sshd["passphrase"])
    bare = repos.make(tmp_path, "remote", {"a.txt": "over ssh\n"})
    url = f"{sshd['url']}{bare}"
    auth = """\
        privateKey: "{{ secret('GIT_KEY') }}"
        passphrase: "{{ secret('GIT_PASSPHRASE') }}"
"""
    ex = run_flow(
        flow(f"""\
  - id: work
    type: core.WorkingDirectory
    tasks:
      - id: clone
        type: git.Clone
        url: {url}
        directory: repo
        knownHosts: "{sshd["host_key"].strip()}"
{auth}      - id: write
        type: scripts.Shell
        commands: ["cat repo/a.txt > repo/b.txt"]
      - id: push
        type: git.Push
        url: {url}
        directory: repo
        commitMessage: copy
{auth}"""),
        home=tmp_path / "home",
    )
    assert ex["state"] == "SUCCESS", ex
    assert repos.git("show", "main:b.txt", cwd=bare) == "over ssh\n"
    assert "key-pass" not in str(ex) and "PRIVATE KEY" not in str(ex)
    wrong = run_flow(
        flow(f"""\
  - id: clone
    type: git.Clone
    url: {url}
    knownHosts: "[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvAvFT2ZmAWLkMT5tTGf5Tbcr3Wn4RutLyTFCZyaaxc"
{auth.replace("        ", "    ")}"""),
        home=tmp_path / "home2",
    )
    assert "Host key verification failed" in task_run(wrong, "clone")["error"]


@pytest.mark.slow
def test_the_user_guide_flow_syncs_a_repository(repos, tmp_path):
    import re
    from pathlib import Path

    guide = Path(__file__).resolve().parents[3] / "docs/user/git.md"
    [source] = re.findall(r"```yaml\n(.*?)```", guide.read_text(), re.S)
    repo = repos.make(tmp_path, "flows", {"flows/hello.yaml": FLOW.format(id="hello", ns="company.team", msg="hi")})
    server = TiercelServer(tmp_path / "home").start()
    try:
        server.deploy(source)
        with server.client() as api:
            ex = api.post(
                "/api/v1/executions/system/gitops",
                params={"wait": True},
                json={"repository": f"file://{repo}", "server": server.url},
            ).json()
            assert ex["state"] == "SUCCESS", ex
            assert task_run(ex, "sync")["outputs"]["created"] == ["company.team.hello"]
            assert api.get("/api/v1/flows/company.team/hello").status_code == 200
    finally:
        server.stop()


def test_clone_and_push_over_https_with_a_token_from_secrets(git_http, repos, tmp_path, monkeypatch):
    url, served = git_http
    monkeypatch.setenv("TIERCEL_SECRET_GIT_TOKEN", "t0ken-s3cret")
    repos.make(served, "private", {"a.txt": "secret stuff\n"})
    auth = "        username: bot\n        password: \"{{ secret('GIT_TOKEN') }}\"\n"
    ex = run_flow(
        flow(f"""\
  - id: work
    type: core.WorkingDirectory
    tasks:
      - id: clone
        type: git.Clone
        url: {url}/private.git
        directory: repo
{auth}      - id: write
        type: scripts.Shell
        commands: ["echo more > repo/b.txt"]
      - id: push
        type: git.Push
        url: {url}/private.git
        directory: repo
        commitMessage: more
{auth}  - id: refused
    type: git.Clone
    url: {url}/private.git
    username: bot
    password: wrong
"""),
        home=tmp_path / "home",
    )
    assert task_run(ex, "push")["outputs"]["pushed"] is True
    assert repos.git("show", "main:b.txt", cwd=served / "private.git") == "more\n"
    assert "Authentication failed" in task_run(ex, "refused")["error"]
    assert "t0ken-s3cret" not in str(ex)


def _files_of(api, namespace: str) -> dict[str, str]:
    names = [f["path"] for f in api.get(f"/api/v1/namespaces/{namespace}/files/directory").json()]
    return {n: api.get(f"/api/v1/namespaces/{namespace}/files", params={"path": n}).text for n in sorted(names)}


def _put_file(api, namespace: str, path: str, text: str) -> None:
    r = api.post(f"/api/v1/namespaces/{namespace}/files", params={"path": path},
                 files={"fileContent": (path, text.encode())})
    assert r.status_code == 204, r.text


@pytest.mark.slow
def test_namespace_files_both_ways_and_push_flows(git_daemon, repos, tmp_path):
    """Repository → namespace files (dry run, sync, delete), then namespace files and flows → repository."""
    url, served = git_daemon
    repos.make(served, "etl", {"scripts/etl.py": "print('v1')\n", "scripts/sql/q.sql": "select 1\n", "README": "r\n"})
    repos.make(served, "out", {"_flows/README.md": "flows pushed by tiercel\n", "_flows/gone.yml": "id: gone\n"})
    server = TiercelServer(tmp_path / "home").start()
    ops = f"""\
id: ops
namespace: company.team
inputs:
  - {{id: dry, type: BOOLEAN, defaults: false}}
tasks:
  - id: sync
    type: io.kestra.plugin.git.SyncNamespaceFiles
    url: {url}/etl.git
    gitDirectory: scripts
    delete: true
    dryRun: "{{{{ inputs.dry }}}}"
    serverUrl: {server.url}
  - id: files
    type: git.PushNamespaceFiles
    url: {url}/out.git
    branch: tiercel
    files: ["*.py", "sql/*"]
    commitMessage: "files of {{{{ execution.id }}}}"
    author: {{name: Ops, email: ops@example.com}}
    dryRun: "{{{{ inputs.dry }}}}"
    serverUrl: {server.url}
  - id: flows
    type: io.kestra.plugin.git.PushFlows
    url: {url}/out.git
    sourceNamespace: company.team
    targetNamespace: prod.team
    includeChildNamespaces: true
    commitMessage: flows
    dryRun: "{{{{ inputs.dry }}}}"
    serverUrl: {server.url}
"""
    try:
        server.deploy(ops)
        server.deploy(FLOW.format(id="child", ns="company.team.sub", msg="hi"))
        server.deploy(FLOW.format(id="other", ns="elsewhere", msg="no"))
        with server.client() as api:
            _put_file(api, "company.team", "stale.txt", "old\n")

            def run(dry: bool) -> dict:
                ex = api.post("/api/v1/executions/company.team/ops", params={"wait": True}, json={"dry": dry}).json()
                assert ex["state"] == "SUCCESS", ex
                return {t: task_run(ex, t)["outputs"] for t in ("sync", "files", "flows")}

            dry = run(True)
            assert dry["sync"]["created"] == ["etl.py", "sql/q.sql"] and dry["sync"]["deleted"] == ["stale.txt"]
            assert _files_of(api, "company.team") == {"stale.txt": "old\n"}
            assert dry["files"]["pushed"] is False and dry["flows"]["pushed"] is False
            assert repos.git("log", "--format=%s", "main", cwd=served / "out.git").split() == ["files", "first"]

            first = run(False)
            assert _files_of(api, "company.team") == {"etl.py": "print('v1')\n", "sql/q.sql": "select 1\n"}
            assert first["files"]["created"] == ["etl.py", "sql/q.sql"] and first["files"]["branch"] == "tiercel"
            bare = served / "out.git"
            assert repos.git("show", "tiercel:_files/sql/q.sql", cwd=bare) == "select 1\n"
            assert repos.git("log", "-1", "--format=%an", "tiercel", cwd=bare).strip() == "Ops"
            assert first["flows"]["created"] == ["ops.yml", "sub/child.yml"] and first["flows"]["deleted"] == ["gone.yml"]
            child = repos.git("show", "main:_flows/sub/child.yml", cwd=bare)
            assert "namespace: prod.team.sub\n" in child and "message: hi" in child
            assert "namespace: prod.team\n" in repos.git("show", "main:_flows/ops.yml", cwd=bare)
            assert repos.git("show", "main:_flows/README.md", cwd=bare) == "flows pushed by tiercel\n"

            again = run(False)  # nothing changed anywhere: no commit
            assert again["sync"]["created"] == again["sync"]["updated"] == again["sync"]["deleted"] == []
            assert again["files"]["commitId"] is None and again["flows"]["commitId"] is None
    finally:
        server.stop()
