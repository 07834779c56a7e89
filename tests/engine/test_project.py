"""`tiercel init`, `tiercel dev` and `tiercel completion`, run as a person runs them (subprocesses)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tiercel.testing.harness import tiercel
from tiercel.testing.services import free_port


def test_init_makes_a_project_that_runs_and_tests_at_once(tmp_path):
    made = tiercel("init", "proj", "-n", "acme.sales", cwd=tmp_path, env={"TIERCEL_HOME": ""})
    assert made.returncode == 0, made.stderr
    project = tmp_path / "proj"
    for name in ("flows/acme.sales/hello.yaml", "flows/acme.sales/hello.test.yaml", "flows/acme.sales/_files/README.md",
                 ".gitignore", "README.md", "flow.schema.json", ".vscode/settings.json"):
        assert (project / name).is_file(), name
    assert "next: cd proj && tiercel run flows/acme.sales/hello.yaml" in made.stdout
    assert json.loads((project / ".vscode/settings.json").read_text())["yaml.schemas"]["./flow.schema.json"]
    assert ".tiercel/" in (project / ".gitignore").read_text()
    env = {k: v for k, v in os.environ.items() if k != "TIERCEL_HOME"}
    run = subprocess.run([sys.executable, "-m", "tiercel.cli.main", "run", "flows/acme.sales/hello.yaml", "-i", "name=Ada",
                          "--json"], cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["outputs"] == {"greeting": "Hello, ADA!"}
    # the project's home: commands anywhere inside the project find the execution
    listed = subprocess.run([sys.executable, "-m", "tiercel.cli.main", "executions", "list"], cwd=project / "flows",
                            env=env, capture_output=True, text=True, timeout=60)
    assert "acme.sales.hello" in listed.stdout and (project / ".tiercel" / "tiercel.db").is_file()
    tested = tiercel("test", "flows", cwd=project)
    assert tested.returncode == 0 and "1 passed" in tested.stdout, tested.stdout + tested.stderr
    assert tiercel("validate", "flows", cwd=project).returncode == 0
    again = tiercel("init", "proj", cwd=tmp_path)
    assert again.returncode == 1 and "is not empty" in again.stderr
    assert tiercel("init", "proj", "--force", cwd=tmp_path).returncode == 0  # adds what is missing, keeps the rest


def test_completion_scripts_and_answers(tmp_path):
    for shell, marker in (("bash", "complete -o nosort -F _tiercel_completion tiercel"), ("zsh", "compdef"),
                          ("fish", "complete --no-files --command tiercel")):
        script = tiercel("completion", shell)
        assert script.returncode == 0 and marker in script.stdout, script.stdout
    env = {"COMP_WORDS": "tiercel executions st", "COMP_CWORD": "2", "_TIERCEL_COMPLETE": "bash_complete"}
    answer = subprocess.run([sys.executable, "-m", "tiercel.cli.main"], env={**os.environ, **env}, capture_output=True,
                            text=True, timeout=60)
    assert answer.stdout.split() == ["plain,start"], answer.stdout
    # bash itself loads the script and completes a command name
    script = tiercel("completion", "bash").stdout
    bindir = Path(sys.executable).parent
    (tmp_path / "tiercel").write_text(f"#!/bin/sh\nexec {sys.executable} -m tiercel.cli.main \"$@\"\n")
    (tmp_path / "tiercel").chmod(0o755)
    probe = (f"{script}\nCOMP_WORDS=(tiercel comp); COMP_CWORD=1; _tiercel_completion tiercel; "
             "printf '%s\\n' \"${COMPREPLY[@]}\"")
    done = subprocess.run(["bash", "--norc", "-c", probe], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": f"{tmp_path}:{bindir}:{os.environ['PATH']}"})
    assert done.stdout.split() == ["completion"], done.stdout + done.stderr


def test_dev_deploys_on_save_shows_errors_and_removes_deleted_flows(tmp_path):
    assert tiercel("init", str(tmp_path / "proj")).returncode == 0
    project = tmp_path / "proj"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "TIERCEL_HOME"}
    log = (tmp_path / "dev.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "tiercel.cli.main", "dev", "--port", str(port), "--interval", "0.2"],
                            cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    api = f"http://127.0.0.1:{port}/api/v1"

    def output() -> str:
        return (tmp_path / "dev.log").read_text()

    def until(test, timeout=60):
        deadline = time.monotonic() + timeout
        while not test():
            assert proc.poll() is None, output()
            assert time.monotonic() < deadline, output()
            time.sleep(0.2)

    try:
        until(lambda: "+ company.team.hello revision 1" in output())
        flow = project / "flows/company.team/hello.yaml"
        flow.write_text(flow.read_text().replace("Hello, {{ inputs.name }}!", "Hi, {{ inputs.name }}!"))
        until(lambda: "~ company.team.hello revision 2" in output())
        assert "Hi, {{ inputs.name }}" in httpx.get(f"{api}/flows/company.team/hello").json()["source"]
        (project / "flows/company.team/broken.yaml").write_text("id: broken\nnamespace: company.team\ntasks:\n\t- id: x\n")
        until(lambda: "broken.yaml: not deployed" in output())
        assert "a tab character in the indentation" in output() and "     4 | " in output()
        (project / "flows/company.team/other.yaml").write_text(
            "id: other\nnamespace: company.team\ntasks:\n  - {id: x, type: core.Log, message: hi}\n")
        until(lambda: "+ company.team.other revision 1" in output())
        (project / "flows/company.team/other.yaml").unlink()
        until(lambda: "- company.team.other" in output())
        assert httpx.get(f"{api}/flows/company.team/other").status_code == 404
        assert (project / ".tiercel" / "tiercel.db").is_file()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
        log.close()


def test_the_project_commands_of_running_md_work_as_written(tmp_path):
    import re

    text = (Path(__file__).resolve().parents[2] / "docs/user/running.md").read_text()
    block = re.search(r"<!-- test: tests/engine/test_project.py runs this block -->\n```sh\n(.*?)```", text, re.S).group(1)
    bindir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if k != "TIERCEL_HOME"}
    env["PATH"] = f"{bindir}:{env['PATH']}"
    done = subprocess.run(["bash", "-e", "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
    assert "Hello, Ada!" in done.stdout and "1 passed" in done.stdout
