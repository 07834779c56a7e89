"""The configuration file: its settings reach every part of the process, the environment wins,
`tiercel config show` tells the sources with secrets masked, and mistakes are errors naming the file."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tiercel.testing import run_json, task_run, tiercel

GUIDE = (Path(__file__).parents[2] / "docs" / "user" / "configuration.md").read_text()


def test_the_files_settings_are_used_and_the_environment_wins(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    mounted = tmp_path / "secrets"
    mounted.mkdir()
    (mounted / "TOKEN").write_text("from-a-file-provider")
    (home / "tiercel.yaml").write_text(f"secretProviders: [{{type: file, path: '{mounted}'}}]\nstorage: local\n")
    flow = tmp_path / "f.yaml"
    flow.write_text(
        "id: f\nnamespace: n\ntasks:\n  - {id: t, type: core.Return, format: \"{{ secret('TOKEN') | length }}\"}\n"
    )
    code, ex = run_json(flow, home=home, env={"TIERCEL_SECRET_PROVIDERS": ""})
    assert code == 0 and task_run(ex, "t")["outputs"]["value"] == str(len("from-a-file-provider"))
    code, ex = run_json(flow, home=home, env={"TIERCEL_SECRET_PROVIDERS": "[env]", "TIERCEL_SECRET_TOKEN": "e"})
    assert code == 0 and task_run(ex, "t")["outputs"]["value"] == "1"  # the environment wins


def test_config_show_masks_secrets_and_names_sources(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    yaml_text = re.search(r"```yaml\n(.*?)```", GUIDE, re.S).group(1)
    yaml_text = yaml_text.replace(
        "- store", "- {type: vault, url: 'http://127.0.0.1:1', token: hvs.do-not-show-me}\n  - store"
    )
    (home / "tiercel.yaml").write_text(yaml_text)
    proc = tiercel(
        "config",
        "show",
        "--json",
        home=home,
        env={
            "TIERCEL_SECRET_KEY": "k" * 44,
            "TIERCEL_PORT": "9999",
            "TIERCEL_SECRET_PROVIDERS": "",
            "TIERCEL_STORAGE": "",
            "TIERCEL_BIND": "",
            "TIERCEL_ALLOWED_HOSTS": "",
        },
    )
    assert proc.returncode == 0, proc.stderr
    assert "hvs.do-not-show-me" not in proc.stdout and "k" * 44 not in proc.stdout
    shown = {row["key"]: row for row in json.loads(proc.stdout)["settings"]}
    assert (shown["port"]["value"], shown["port"]["source"]) == ("9999", "env")
    assert shown["allowedHosts"]["source"] == "file" and shown["secretKey"]["value"] == "****** (set)"
    assert shown["secretProviders"]["value"][2] == {"type": "vault", "url": "http://127.0.0.1:1", "token": "******"}
    assert json.loads(proc.stdout)["pluginDefaults"] == {"global": 1, "namespaces": {"company": 1}}


def test_mistakes_in_the_file_are_errors_naming_it(tmp_path):
    (tmp_path / "tiercel.yaml").write_text("storgae: local\n")
    proc = tiercel("config", "show", home=tmp_path)
    assert proc.returncode == 2 and f"{tmp_path / 'tiercel.yaml'}: unknown setting(s) storgae" in proc.stderr
    (tmp_path / "tiercel.yaml").write_text("secretKey: abc\n")
    proc = tiercel("kv", "list", "n", home=tmp_path)
    assert proc.returncode == 2 and "secretKey is never read from a file: export TIERCEL_SECRET_KEY" in proc.stderr
