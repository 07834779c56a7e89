"""The CLI with --server / TIERCEL_SERVER against a running server, and `tiercel triggers` on the home."""

from __future__ import annotations

import json

from tiercel.testing.harness import tiercel

FLOW = """\
id: remote
namespace: demo.cli
tasks:
  - {id: say, type: core.Log, message: "hello from {{ flow.id }}"}
  - {id: fail, type: core.Fail, runIf: "{{ labels.fail ?? false }}"}
triggers:
  - {id: nightly, type: core.Schedule, cron: "0 2 * * *", timezone: UTC}
"""


def test_flows_and_executions_commands_talk_to_the_server(server, api, tmp_path, h):
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "remote.yaml").write_text(FLOW)
    env = {"TIERCEL_SERVER": server.url}
    elsewhere = tmp_path / "unused-home"  # proves nothing is read from or written to a local home

    out = tiercel("flows", "deploy", str(folder), home=elsewhere, env=env)
    assert out.returncode == 0, out.stderr
    assert "+ demo.cli.remote (revision 1)" in out.stdout and f"deployed to {server.url}: 1 new" in out.stdout
    assert "0 new, 0 updated, 1 unchanged" in tiercel("flows", "deploy", str(folder), home=elsewhere, env=env).stdout
    listed = tiercel("flows", "list", "--json", "--server", server.url, home=elsewhere)
    assert json.loads(listed.stdout) == [{"namespace": "demo.cli", "id": "remote", "revision": 1}]
    assert tiercel("flows", "show", "demo.cli", "remote", home=elsewhere, env=env).stdout == FLOW

    ex = api.post("/api/v1/executions/demo.cli/remote", params={"wait": True, "labels": "fail:true"}).json()
    assert ex["state"] == "FAILED"
    shown = tiercel("executions", "show", ex["id"], "--json", home=elsewhere, env=env)
    assert json.loads(shown.stdout)["id"] == ex["id"]
    rows = json.loads(tiercel("executions", "list", "--json", "-f", "remote", home=elsewhere, env=env).stdout)
    assert rows["total"] == 1
    logs = tiercel("executions", "logs", ex["id"], home=elsewhere, env=env).stdout
    assert "hello from remote" in logs
    restarted = tiercel("executions", "restart", ex["id"], "--json", home=elsewhere, env=env)
    assert restarted.returncode == 1 and json.loads(restarted.stdout)["id"] == ex["id"]
    replayed = tiercel("executions", "replay", ex["id"], "--json", home=elsewhere, env=env)
    assert json.loads(replayed.stdout)["originalId"] == ex["id"]
    assert "already ended" in tiercel("executions", "kill", ex["id"], home=elsewhere, env=env).stderr

    triggers = json.loads(tiercel("triggers", "list", "--json", home=elsewhere, env=env).stdout)
    assert [(t["triggerId"], t["disabled"]) for t in triggers] == [("nightly", False)]
    assert "disabled" in tiercel("triggers", "disable", "demo.cli", "remote", "nightly", home=elsewhere, env=env).stdout
    started = tiercel("triggers", "backfill", "start", "demo.cli", "remote", "nightly", "--start", "2026-01-01T00:00:00Z",
                      "--end", "2026-01-03T02:00:00Z", home=elsewhere, env=env)
    assert started.returncode == 0, started.stderr
    h.wait_for(lambda: len(h.executions(api, "remote", labels="system.backfill:true")) == 3)
    dates = sorted(e["trigger"]["variables"]["date"] for e in h.executions(api, "remote", labels="system.backfill:true"))
    assert dates == ["2026-01-01T02:00:00+00:00", "2026-01-02T02:00:00+00:00", "2026-01-03T02:00:00+00:00"]
    assert not elsewhere.exists()

    assert tiercel("flows", "delete", "demo.cli", "remote", home=elsewhere, env=env).returncode == 0
    gone = tiercel("flows", "show", "demo.cli", "remote", home=elsewhere, env=env)
    assert gone.returncode == 1 and "not found" in gone.stderr
    down = tiercel("flows", "list", "--server", "http://127.0.0.1:9", home=elsewhere)
    assert down.returncode == 1 and "cannot reach the Tiercel server" in down.stderr


def test_triggers_commands_on_the_embedded_home(tmp_path):
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "remote.yaml").write_text(FLOW)
    home = tmp_path / "home"
    assert tiercel("flows", "deploy", str(folder), home=home).returncode == 0
    assert "enabled" in tiercel("triggers", "list", home=home).stdout
    assert "disabled" in tiercel("triggers", "disable", "demo.cli", "remote", "nightly", home=home).stdout
    out = tiercel("triggers", "backfill", "start", "demo.cli", "remote", "nightly", "--start", "2026-01-01T00:00:00Z",
                  "--end", "2026-01-05T00:00:00Z", home=home)
    assert "backfill 0/4" in out.stdout, out.stderr
    assert "paused" in tiercel("triggers", "backfill", "pause", "demo.cli", "remote", "nightly", home=home).stdout
    assert "backfill" not in tiercel("triggers", "backfill", "cancel", "demo.cli", "remote", "nightly", home=home).stdout
    missing = tiercel("triggers", "enable", "demo.cli", "remote", "nope", home=home)
    assert missing.returncode == 1 and "no trigger `nope`" in missing.stderr
