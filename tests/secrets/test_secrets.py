"""Secrets end to end: the providers of the core (env, files, the encrypted store), their order,
namespace inheritance, the errors a user sees, and masking on every path a value could leak by."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from urllib.parse import quote

import pytest

from tiercel.testing import put_secret, run_flow, run_json, task_run, tiercel

VALUE = "Sup3r-s3cret/value+42"

LEAKY = """id: leaky
namespace: company.team
tasks:
  - id: forms
    type: core.Log
    message: >-
      plain={{ secret('DB_PASS') }} upper={{ secret('DB_PASS') | upper }}
      b64={{ secret('DB_PASS') | base64encode }} url={{ secret('DB_PASS') | urlencode }}
      reversed={{ secret('DB_PASS') | reverse }} prefix={{ secret('DB_PASS')[:10] }}
      repr={{ '{0!r}'.format(secret('DB_PASS')) }} fn={{ '{0!r}'.format(secret) }}
  - id: out
    type: core.OutputValues
    values:
      json: "{{ {'password': secret('DB_PASS')} | toJson }}"
      key: "{{ secret('DB_PASS') | base64encode }}"
  - id: fail
    type: core.Fail
    errorMessage: "cannot connect with {{ secret('DB_PASS') | lower }}"
"""


def forms(value: str) -> list[str]:
    return [
        value,
        value.upper(),
        value.lower(),
        base64.b64encode(value.encode()).decode(),
        quote(value, safe=""),
        value[::-1],
        value[:10],
    ]


def leaks(text: str, value: str = VALUE) -> list[str]:
    return [form for form in forms(value) if form in text]


@pytest.fixture
def key(monkeypatch):
    from tiercel.core.secrets import new_key

    value = new_key()
    monkeypatch.setenv("TIERCEL_SECRET_KEY", value)
    return value


def test_env_secrets_plain_and_kestra_base64_masked_in_every_form(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_DB_PASS", base64.b64encode(VALUE.encode()).decode())  # Kestra's format
    logs: list = []
    ex = run_flow(LEAKY, home=tmp_path, logs=logs)
    assert ex["state"] == "FAILED"
    assert not leaks(json.dumps(ex) + json.dumps(logs)), logs
    line = next(m for t, _, m in logs if t == "forms")
    assert line.startswith("plain=****** upper=****** b64=****** url=****** reversed=****** prefix=******"), line
    assert line.endswith("repr='******' fn=secret()"), line  # the function shows as its name, not a Python repr
    assert task_run(ex, "fail")["error"] == "cannot connect with ******"
    for path in tmp_path.rglob("*"):  # the database (and its WAL), stored outputs, everything in the home
        if path.is_file():
            data = path.read_bytes()
            assert not [f for f in forms(VALUE) if f.encode() in data], path
    monkeypatch.setenv("TIERCEL_SECRET_DB_PASS", "plain-wins-over-base64")
    ex = run_flow(LEAKY.replace("DB_PASS') | base64encode", "DB_PASS')"), home=tmp_path)
    assert task_run(ex, "out")["outputs"]["values"]["key"] == "******"


def test_stored_secrets_are_encrypted_and_inherited_by_sub_namespaces(tmp_path, key):
    home = tmp_path / "home"
    set_ = subprocess.run(
        [sys.executable, "-m", "tiercel.cli.main", "secrets", "set", "DB_PASS", "-n", "company"],
        input=VALUE + "\n",
        capture_output=True,
        text=True,
        env={**_env(home)},
        timeout=60,
    )
    assert set_.returncode == 0, set_.stderr
    put_secret(home, "", "REGION", "eu-west-9-global")
    put_secret(home, "company.other", "DB_PASS", "sibling-value-never-seen")
    listed = tiercel("secrets", "list", "--all", home=home)
    assert listed.stdout.splitlines() == ["(global)\tREGION", "company\tDB_PASS", "company.other\tDB_PASS"]
    assert VALUE not in listed.stdout
    flow = tmp_path / "f.yaml"
    flow.write_text("""id: inherit
namespace: company.team
tasks:
  - id: read
    type: core.Return
    format: "{{ secret('DB_PASS') | length }} {{ secret('REGION') }}"
""")
    code, ex = run_json(flow, home=home)
    assert code == 0 and task_run(ex, "read")["outputs"]["value"] == f"{len(VALUE)} ******"
    for path in home.rglob("tiercel.db*"):
        assert VALUE.encode() not in path.read_bytes() and b"eu-west-9-global" not in path.read_bytes()
    code, ex = run_json(flow, home=home, env={"TIERCEL_SECRET_KEY": base64.b64encode(b"k" * 32).decode()})
    assert code == 1 and "TIERCEL_SECRET_KEY is not the key it was stored with" in task_run(ex, "read")["error"]
    assert tiercel("secrets", "delete", "DB_PASS", "-n", "company", home=home).returncode == 0
    gone = tiercel("secrets", "delete", "DB_PASS", "-n", "company", home=home)
    assert gone.returncode == 1 and "no secret `DB_PASS` in company" in gone.stderr


def _env(home):
    import os

    return {**os.environ, "TIERCEL_HOME": str(home)}


def test_the_store_refuses_to_work_without_a_key(tmp_path, monkeypatch):
    monkeypatch.delenv("TIERCEL_SECRET_KEY", raising=False)
    proc = tiercel("secrets", "set", "X", "value", home=tmp_path)
    assert proc.returncode == 1 and "TIERCEL_SECRET_KEY is not set" in proc.stderr and "new-key" in proc.stderr
    proc = tiercel("secrets", "set", "X", "value", home=tmp_path, env={"TIERCEL_SECRET_KEY": "short"})
    assert "must be 32 random bytes in base64" in proc.stderr


def test_providers_chain_in_the_configured_order_and_files_are_scoped(tmp_path, monkeypatch, key):
    mounted = tmp_path / "run-secrets"
    (mounted / "company").mkdir(parents=True)
    (mounted / "company" / "TOKEN").write_text("from-a-mounted-file\n")
    (mounted / "OTHER").write_text("global-file-value")
    put_secret(tmp_path, "company", "TOKEN", "from-the-store-value")
    monkeypatch.setenv("TIERCEL_SECRET_TOKEN", "from-the-environment")
    flow = """id: order
namespace: company.team
tasks:
  - id: read
    type: core.Return
    format: "{{ secret('TOKEN') | base64encode | base64decode | length }} {{ secret('OTHER') | length }}"
"""
    lengths = {}
    for config in ("[env, store]", f"[{{type: file, path: '{mounted}'}}, env]", "[store, env]"):
        monkeypatch.setenv("TIERCEL_SECRET_PROVIDERS", config)
        if config.startswith("[env"):
            monkeypatch.setenv("TIERCEL_SECRET_OTHER", "x")
        ex = run_flow(flow, home=tmp_path)
        lengths[config.split(",")[0]] = task_run(ex, "read")["outputs"]["value"].split()[0]
    assert lengths == {
        "[env": str(len("from-the-environment")),
        "[{type: file": str(len("from-a-mounted-file")),
        "[store": str(len("from-the-store-value")),
    }


def test_an_unknown_secret_or_provider_fails_the_task_saying_which(tmp_path, monkeypatch):
    flow = """id: unknown
namespace: company.team
tasks:
  - id: read
    type: core.Log
    message: "{{ secret('NOT_THERE') }}"
"""
    ex = run_flow(flow, home=tmp_path)
    error = task_run(ex, "read")["error"]
    assert "secret `NOT_THERE` not found for namespace `company.team`" in error
    assert "env (TIERCEL_SECRET_NOT_THERE, or SECRET_NOT_THERE in base64); store" in error
    monkeypatch.setenv("TIERCEL_SECRET_PROVIDERS", "[env, {type: fil, path: /x}]")
    ex = run_flow(flow, home=tmp_path)
    assert "TIERCEL_SECRET_PROVIDERS[1]: unknown secret provider `fil`; did you mean `file`" in task_run(ex, "read")[
        "error"
    ].replace("core.FileSecrets", "file")


def test_the_guide_example_runs_as_written(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    guide = (Path(__file__).parents[2] / "docs" / "user" / "secrets.md").read_text()
    flow = re.search(r"```yaml\n(.*?)```", guide, re.S).group(1)
    name, value = re.search(r"\$ export (TIERCEL_SECRET_\w+)=(\S+)", guide).groups()
    shown = re.search(r"\$ tiercel run \S+\n +(\w+) +INFO (.*)\n", guide).groups()
    monkeypatch.setenv(name, value)
    logs: list = []
    ex = run_flow(flow, home=tmp_path, logs=logs)
    assert ex["state"] == "SUCCESS" and value not in json.dumps(ex) + json.dumps(logs)
    assert (shown[0], "INFO", shown[1]) in logs
    assert task_run(ex, "header")["outputs"]["value"].startswith("Basic c3ZjOn******")  # base64 of 'svc:' + the token


def test_secret_inputs_labels_and_subflows_never_show_or_store_the_value(tmp_path):
    value = "InputSecretValue-77x"
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "child.yaml").write_text("""id: child
namespace: company.team
inputs:
  - {id: token, type: STRING}
tasks:
  - id: use
    type: core.Log
    message: "child got {{ inputs.token }}"
outputs:
  - {id: echoed, type: STRING, value: "{{ inputs.token }}"}
""")
    parent = tmp_path / "flows" / "parent.yaml"
    parent.write_text("""id: parent
namespace: company.team
inputs:
  - {id: pw, type: SECRET}
tasks:
  - id: label
    type: core.Labels
    labels: {token: "{{ inputs.pw }}"}
  - id: call
    type: core.Subflow
    namespace: company.team
    flowId: child
    inputs: {token: "{{ inputs.pw }}"}
""")
    assert tiercel("flows", "deploy", str(tmp_path / "flows"), home=tmp_path / "home").returncode == 0
    code, ex = run_json(parent, "-i", f"pw={value}", home=tmp_path / "home")
    assert code == 0, ex
    assert ex["inputs"] == {"pw": "******"} and ex["labels"]["token"] == "******"
    child_id = task_run(ex, "call")["outputs"]["executionId"]
    shown = tiercel("executions", "show", child_id, "--json", home=tmp_path / "home")
    assert shown.returncode == 0, shown.stderr
    child = json.loads(shown.stdout)
    assert child["inputs"] == {"token": "******"} and child["outputs"] == {"echoed": "******"}
    assert value not in json.dumps(ex) + shown.stdout
    replayed = tiercel("executions", "replay", ex["id"], "--json", home=tmp_path / "home")  # another process
    again = json.loads(replayed.stdout)  # unseals the stored input: the child gets the real value again
    assert again["state"] == "SUCCESS" and again["inputs"] == {"pw": "******"} and value not in replayed.stdout
    for path in (tmp_path / "home").rglob("*"):
        if path.is_file():
            assert value.encode() not in path.read_bytes(), path


def test_the_cli_live_view_masks_every_form(tmp_path):
    flow = tmp_path / "leaky.yaml"
    flow.write_text(LEAKY)
    proc = tiercel("run", str(flow), home=tmp_path / "home", env={"TIERCEL_SECRET_DB_PASS": VALUE})
    assert proc.returncode == 1 and "plain=****** upper=******" in proc.stdout + proc.stderr
    assert not leaks(proc.stdout + proc.stderr)


def test_a_name_no_file_can_have_is_left_to_the_next_provider(tmp_path, monkeypatch):
    (tmp_path / "escape").write_text("must never be read")
    (tmp_path / "mounted").mkdir()
    monkeypatch.setenv("TIERCEL_SECRET_PROVIDERS", f"[{{type: file, path: '{tmp_path / 'mounted'}'}}, env]")
    monkeypatch.setenv("TIERCEL_SECRET_DB_PASSWORD", "from-env-after-file")
    ex = run_flow("""id: names
namespace: company
tasks:
  - id: slash
    type: core.Return
    format: "{{ secret('db/password') | length }}"
  - id: escape
    type: core.Return
    format: "{{ secret('../escape') }}"
""", home=tmp_path / "home")
    assert task_run(ex, "slash")["outputs"]["value"] == str(len("from-env-after-file"))
    assert "secret `../escape` not found" in task_run(ex, "escape")["error"]
