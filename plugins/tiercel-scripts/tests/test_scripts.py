"""Script tasks through real flows: real interpreters, the process runner, internal storage."""

from __future__ import annotations

import json
import random
import shutil
import time
from pathlib import Path

import pytest

from tiercel.flow import FlowValidationError, load_flow
from tiercel.testing.harness import run_json, task_run


def flow(*tasks: str, flow_id: str = "scripts_test") -> str:
    body = "".join(tasks)
    return f"id: {flow_id}\nnamespace: company.team\ntasks:\n{body}"


def living(mark: str) -> list[int]:
    """Pids of live (non-zombie) processes whose command line holds *mark*."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if mark in cmd and stat[stat.rfind(")") + 2] not in "ZX":
            found.append(int(entry.name))
    return found


def test_shell_commands_outputs_logs_and_exit_code(home):
    ex = home.run(flow("""\
  - id: sh
    type: scripts.Shell
    commands:
      - cd /
      - echo "in $(pwd)"
      - 'echo "::{\\"outputs\\": {\\"answer\\": 42, \\"who\\": \\"shell\\"}}::"'
  - id: show
    type: core.Return
    format: "{{ outputs.sh.vars.answer + 1 }} from {{ outputs.sh.vars.who }}"
"""))
    assert ex["state"] == "SUCCESS", ex
    sh = task_run(ex, "sh")
    assert sh["outputs"] == {"exitCode": 0, "vars": {"answer": 42, "who": "shell"}}
    assert task_run(ex, "show")["outputs"]["value"] == "43 from shell"
    assert ("INFO", "in /") in home.lines(ex, "sh")  # commands share one shell: `cd` carried over
    assert not any("::" in message for _, message in home.lines(ex, "sh"))  # instructions are not logged


def test_python_script_with_the_helper(home):
    ex = home.run(flow("""\
  - id: py
    type: scripts.Python
    script: |
      import sys
      from tiercel_scripts.helper import outputs, counter, timer, log
      outputs({"rows": 3}, status="ok")
      outputs(more=[1, 2])
      counter("rows", 3, table="users")
      timer("load", 0.25)
      log("careful", level="WARN")
      log("details", level="debug")
      print("plain line")
      print("to stderr", file=sys.stderr)
"""))
    assert ex["state"] == "SUCCESS", ex
    assert task_run(ex, "py")["outputs"]["vars"] == {"rows": 3, "status": "ok", "more": [1, 2]}
    lines = home.lines(ex, "py")
    assert ("WARN", "careful") in lines and ("DEBUG", "details") in lines
    assert ("INFO", "plain line") in lines and ("WARN", "to stderr") in lines
    metrics = {(m["name"], m["type"], m["value"], json.dumps(m["tags"])) for m in home.metrics(ex)}
    assert ("rows", "counter", 3.0, '{"table": "users"}') in metrics
    assert ("load", "timer", 0.25, "{}") in metrics


def test_raw_protocol_lines_from_any_language(home):
    ex = home.run(flow("""\
  - id: sh
    type: scripts.Shell
    commands:
      - 'echo ''::{"metrics": [{"name": "n", "type": "counter", "value": 2, "tags": {"k": "v"}}]}::'''
      - 'echo ''::{"logs": [{"level": "ERROR", "message": "bad thing"}, {"level": "INFO", "message": "fine"}]}::'''
      - 'echo ''::{"outputs": {"a": 1}}::'''
      - 'echo ''::{"outputs": {"b": 2}}::'' >&2'
"""))
    assert ex["state"] == "SUCCESS", ex
    assert task_run(ex, "sh")["outputs"]["vars"] == {"a": 1, "b": 2}
    lines = home.lines(ex, "sh")
    assert ("ERROR", "bad thing") in lines and ("INFO", "fine") in lines
    assert [(m["name"], m["value"], m["tags"]) for m in home.metrics(ex)] == [("n", 2.0, {"k": "v"})]


def test_a_malformed_instruction_warns_and_the_script_goes_on(home):
    ex = home.run(flow("""\
  - id: sh
    type: scripts.Shell
    commands:
      - 'echo ''::{"outputs": {"a": 1}::'''
      - 'echo ''::{"outputs": [1, 2]}::'''
      - 'echo ''::{"metrics": [{"name": "n", "value": "many"}]}::'''
      - 'echo ''::{"surprise": 1}::'''
      - 'echo ''::{"outputs": {"ok": true}}::'''
      - echo still running
"""))
    assert ex["state"] == "SUCCESS", ex
    assert task_run(ex, "sh")["outputs"]["vars"] == {"ok": True}
    warnings = [message for level, message in home.lines(ex, "sh") if level == "WARN"]
    assert len(warnings) == 4, warnings
    assert all(w.startswith("ignored a malformed ::{...}:: line") for w in warnings)
    assert any("unknown key `surprise`" in w for w in warnings)
    assert any("numeric `value`" in w for w in warnings)
    assert ("INFO", "still running") in home.lines(ex, "sh")


def test_non_zero_exit_fails_with_the_code_and_the_end_of_stderr(home):
    ex = home.run(flow("""\
  - id: py
    type: scripts.Python
    script: |
      import sys
      for i in range(30):
          print(f"err line {i}", file=sys.stderr)
      sys.exit(7)
  - id: never
    type: core.Log
    message: not reached
"""))
    assert ex["state"] == "FAILED"
    error = task_run(ex, "py")["error"]
    assert error.startswith("the script exited with code 7")
    assert "err line 29" in error and "err line 0\n" not in error  # a tail, not everything
    assert "never" not in [t["taskId"] for t in ex["taskRuns"]]


def test_fail_fast(home):
    stop = home.run(flow("""\
  - id: sh
    type: scripts.Shell
    commands:
      - echo before
      - "false"
      - echo after
"""))
    assert stop["state"] == "FAILED"
    assert "exited with code 1" in task_run(stop, "sh")["error"]
    assert ("INFO", "after") not in home.lines(stop, "sh")
    go_on = home.run(flow("""\
  - id: sh
    type: scripts.Shell
    failFast: false
    commands:
      - "false"
      - echo after
"""))
    assert go_on["state"] == "SUCCESS"
    assert ("INFO", "after") in home.lines(go_on, "sh")


def test_before_commands_env_and_interpreter(home):
    ex = home.run(flow("""\
  - id: sh
    type: scripts.Shell
    interpreter: [/bin/bash, -c]
    env:
      GREETING: hello
      COUNT: "{{ 2 + 1 }}"
    beforeCommands:
      - export SUFFIX=from-before
    script: |
      arr=(a b c)
      echo "$GREETING ${#arr[@]} $COUNT $SUFFIX"
  - id: py
    type: scripts.Python
    beforeCommands:
      - export FROM_BEFORE=yes
    env:
      PYTHONPATH: /nonexistent
    script: |
      import os, sys
      from tiercel_scripts.helper import outputs
      outputs(before=os.environ["FROM_BEFORE"], exe=sys.executable, path=os.environ["PYTHONPATH"])
"""))
    assert ex["state"] == "SUCCESS", ex
    assert ("INFO", "hello 3 3 from-before") in home.lines(ex, "sh")  # bash arrays: the interpreter was bash
    out = task_run(ex, "py")["outputs"]["vars"]
    assert out["before"] == "yes"
    assert out["path"].startswith("/nonexistent")  # the user's entry first, the helper still reachable


def test_input_files_inline_and_from_storage_and_output_files(home):
    ex = home.run(flow("""\
  - id: make
    type: scripts.Shell
    outputFiles:
      - "*.txt"
      - nested/*.csv
    commands:
      - echo one > one.txt
      - mkdir nested && printf 'a,b\\n1,2\\n' > nested/data.csv
      - echo ignored > other.log
      - echo extra > "$OUTPUT_DIR/extra.json"
  - id: use
    type: scripts.Python
    inputFiles:
      inline.txt: "made by {{ flow.id }}"
      copy.csv: "{{ outputs.make.outputFiles['nested/data.csv'] }}"
      sub/dir/one.txt: "{{ outputs.make.outputFiles['one.txt'] }}"
    script: |
      from pathlib import Path
      from tiercel_scripts.helper import outputs
      outputs(inline=Path("inline.txt").read_text(), csv=Path("copy.csv").read_text(),
              one=Path("sub/dir/one.txt").read_text().strip())
"""))
    assert ex["state"] == "SUCCESS", ex
    files = task_run(ex, "make")["outputs"]["outputFiles"]
    assert sorted(files) == ["extra.json", "nested/data.csv", "one.txt"]
    assert all(uri.startswith("tiercel://company/team/scripts_test/executions/") for uri in files.values())
    assert task_run(ex, "use")["outputs"]["vars"] == {"inline": "made by scripts_test", "csv": "a,b\n1,2\n", "one": "one"}


def test_input_files_as_one_expression(home):
    ex = home.run(flow("""\
  - id: names
    type: core.Return
    format: '{"a.txt": "alpha", "b.txt": "beta"}'
  - id: cat
    type: scripts.Shell
    inputFiles: "{{ outputs.names.value }}"
    commands:
      - cat a.txt b.txt
"""))
    assert ex["state"] == "SUCCESS", ex
    assert [m for _, m in home.lines(ex, "cat")] == ["alphabeta"]


def test_a_missing_input_uri_names_it(home):
    ex = home.run(flow("""\
  - id: cat
    type: scripts.Shell
    inputFiles:
      a.txt: tiercel://company/team/nothing/here.txt
    commands:
      - cat a.txt
"""))
    assert ex["state"] == "FAILED"
    assert "tiercel://company/team/nothing/here.txt does not exist" in task_run(ex, "cat")["error"]


def test_namespace_files(home):
    from tiercel.testing import write_file

    for name, text in (("lib/util.py", "VALUE = 'from a namespace file'\n"), ("lib/skip.py", "x = 1\n"),
                       ("notes.md", "# notes\n")):
        write_file(f"tiercel://company/team/_files/{name}", text.encode(), home.path)
    ex = home.run(flow("""\
  - id: py
    type: scripts.Python
    namespaceFiles:
      include: ["lib/*"]
      exclude: ["*skip*"]
    script: |
      import os, sys
      sys.path.insert(0, "lib")
      import util
      from tiercel_scripts.helper import outputs
      outputs(value=util.VALUE, files=sorted(os.listdir("lib")), notes=os.path.exists("notes.md"))
"""))
    assert ex["state"] == "SUCCESS", ex
    assert task_run(ex, "py")["outputs"]["vars"] == {"value": "from a namespace file", "files": ["util.py"], "notes": False}


def test_timeout_kills_the_whole_process_group(home):
    mark = f"{random.randint(500, 900)}.{random.randint(100000, 999999)}"
    start = time.monotonic()
    ex = home.run(flow(f"""\
  - id: slow
    type: scripts.Shell
    timeout: PT1S
    commands:
      - sleep {mark} &
      - echo started
      - sleep {mark}
"""))
    assert time.monotonic() - start < 10
    assert ex["state"] == "FAILED"
    assert "timed out" in task_run(ex, "slow")["error"]
    end = time.monotonic() + 3
    while living(mark) and time.monotonic() < end:
        time.sleep(0.05)
    assert living(mark) == []  # no orphan, not even the background child


def test_lines_stream_into_the_logs_as_they_come(home):
    ex = home.run(flow("""\
  - id: py
    type: scripts.Python
    script: |
      import time
      print("first")
      time.sleep(0.6)
      print("second")
"""))
    assert ex["state"] == "SUCCESS", ex
    stamps = {log["message"]: log["timestamp"] for log in home.logs(ex, "py")}
    assert stamps["second"] - stamps["first"] >= 0.4  # logged when printed, not at the end


def test_stderr_level_follows_warning_on_std_err(home):
    ex = home.run(flow("""\
  - id: warn
    type: scripts.Shell
    commands: ["echo problem >&2"]
  - id: info
    type: scripts.Shell
    warningOnStdErr: false
    commands: ["echo progress >&2"]
"""))
    assert ex["state"] == "SUCCESS"
    assert home.lines(ex, "warn") == [("WARN", "problem")]
    assert home.lines(ex, "info") == [("INFO", "progress")]


@pytest.mark.parametrize("body, problem", [
    ("    commands: [echo hi]\n    script: echo hi\n", "set exactly one of `commands`"),
    ("    env: {A: b}\n", "set exactly one of `commands`"),
    ("    commands: echo hi\n", "commands"),
    ("    comands: [echo hi]\n", "comands"),
])
def test_bad_properties_are_refused_when_the_flow_loads(body, problem):
    with pytest.raises(FlowValidationError) as err:
        load_flow(flow(f"  - id: bad\n    type: scripts.Shell\n{body}"))
    assert problem in str(err.value)
    assert "bad" in str(err.value)


def test_task_runner_by_type(home):
    ex = home.run(flow("""\
  - id: explicit
    type: scripts.Shell
    taskRunner:
      type: core.Process
    commands: [echo explicit]
  - id: kestra_name
    type: scripts.Shell
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    commands: [echo kestra]
  - id: unknown
    type: scripts.Shell
    taskRunner:
      type: core.Proces
    commands: [echo never]
"""))
    assert task_run(ex, "explicit")["state"] == "SUCCESS"
    assert task_run(ex, "kestra_name")["state"] == "SUCCESS"
    error = task_run(ex, "unknown")["error"]
    assert "unknown task runner `core.Proces`" in error and "core.Process" in error


def test_kestra_types_run_unchanged(home):
    ex = home.run(flow("""\
  - id: commands
    type: io.kestra.plugin.scripts.shell.Commands
    containerImage: ubuntu:latest
    commands:
      - echo shell commands
  - id: script
    type: io.kestra.plugin.scripts.python.Script
    containerImage: python:3.11-slim
    warningOnStdErr: false
    script: |
      print("::{\\"outputs\\": {\\"from\\": \\"kestra\\"}}::")
  - id: py_commands
    type: io.kestra.plugin.scripts.python.Commands
    inputFiles:
      main.py: print("main ran")
    commands:
      - python main.py
"""))
    assert ex["state"] == "SUCCESS", ex
    assert task_run(ex, "script")["outputs"]["vars"] == {"from": "kestra"}
    assert home.lines(ex, "py_commands") == [("INFO", "main ran")]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (apt-get install nodejs)")
def test_node_script_and_commands(home):
    ex = home.run(flow("""\
  - id: js
    type: scripts.Node
    script: |
      const total = [1, 2, 3].reduce((a, b) => a + b, 0);
      console.log(`::${JSON.stringify({outputs: {total}})}::`);
      console.error("node warns");
  - id: js_commands
    type: io.kestra.plugin.scripts.node.Commands
    inputFiles:
      main.js: console.log("node main", process.argv.slice(2).join(","))
    commands:
      - node main.js x y
"""))
    assert ex["state"] == "SUCCESS", ex
    assert task_run(ex, "js")["outputs"]["vars"] == {"total": 6}
    assert ("WARN", "node warns") in home.lines(ex, "js")
    assert home.lines(ex, "js_commands") == [("INFO", "node main x,y")]


def test_a_missing_interpreter_is_named(home):
    ex = home.run(flow("""\
  - id: sh
    type: scripts.Shell
    interpreter: [/no/such/shell, -c]
    commands: [echo hi]
"""))
    assert ex["state"] == "FAILED"
    assert "/no/such/shell" in task_run(ex, "sh")["error"]


def test_examples_are_valid_and_the_runnable_ones_succeed(home):
    from tiercel_scripts.tasks import Node, Python, Shell

    for cls in (Shell, Python, Node):
        assert cls.examples, cls.type
        for example in cls.examples:
            load_flow(example.flow)
            if example.run:
                ex = home.run(example.flow)
                assert ex["state"] == "SUCCESS", (cls.type, example.title, ex)


def test_through_the_cli(tmp_path):
    path = tmp_path / "cli.yaml"
    path.write_text(flow("""\
  - id: py
    type: scripts.Python
    outputFiles: [result.json]
    script: |
      import json
      from tiercel_scripts.helper import outputs
      json.dump({"ok": True}, open("result.json", "w"))
      outputs(done=True)
""", flow_id="cli_scripts"))
    code, ex = run_json(path, home=tmp_path / "home")
    assert code == 0 and ex["state"] == "SUCCESS", ex
    out = task_run(ex, "py")["outputs"]
    assert out["vars"] == {"done": True} and out["outputFiles"]["result.json"].endswith("/result.json")


@pytest.mark.slow
@pytest.mark.parametrize("tool", ["uv", "pip"])
def test_python_dependencies_are_installed_once_and_reused(home, tool, monkeypatch):
    from tiercel_scripts import _venv

    if tool == "pip":
        monkeypatch.setattr(_venv, "find_uv", lambda: None)
    elif _venv.find_uv() is None:
        pytest.fail("uv is not installed: pip install -e 'plugins/tiercel-scripts[test]' brings it")
    task = """\
      - id: {id}
        type: scripts.Python
        dependencies: [six]
        script: |
          import pathlib, six
          from tiercel_scripts.helper import outputs
          outputs(version=six.__version__, prefix=str(pathlib.Path(six.__file__).parents[3]))
"""
    source = flow("""\
  - id: both
    type: core.Parallel
    tasks:
""" + task.format(id="a") + task.format(id="b") + """\
  - id: commands
    type: scripts.Python
    dependencies: [six]
    commands:
      - python -c "import pathlib, six; print(pathlib.Path(six.__file__).parents[3])"
""")
    first = home.run(source, timeout=300)
    assert first["state"] == "SUCCESS", first
    a, b = task_run(first, "a")["outputs"]["vars"], task_run(first, "b")["outputs"]["vars"]
    assert a == b and a["version"].startswith("1.")
    venv = Path(a["prefix"])
    assert venv.parent == home.path / "cache" / "venvs"
    created = [m for _, m in home.lines(first) if m.startswith("creating a Python environment for six")]
    assert len(created) == 1  # two concurrent tasks, one build (the other waited on the lock)
    assert f" with {tool} in " in created[0]
    built_at = (venv / ".ready").stat().st_mtime_ns

    start = time.monotonic()
    second = home.run(source)
    assert second["state"] == "SUCCESS", second
    assert time.monotonic() - start < 15
    assert task_run(second, "a")["outputs"]["vars"]["prefix"] == str(venv)
    assert (venv / ".ready").stat().st_mtime_ns == built_at  # reused, not rebuilt
    assert ("INFO", str(venv)) in home.lines(second, "commands")  # `python` in commands sees the environment
    assert not any(m.startswith("creating") for _, m in home.lines(second))


@pytest.mark.slow
def test_a_dependency_that_cannot_be_installed_fails_with_pips_words(home):
    ex = home.run(flow("""\
  - id: py
    type: scripts.Python
    dependencies: ["tiercel-no-such-package-xyz==0.0.1"]
    script: print("never")
"""), timeout=300)
    assert ex["state"] == "FAILED"
    error = task_run(ex, "py")["error"]
    assert error.startswith("installing Python dependencies failed")
    assert "tiercel-no-such-package-xyz" in error


def test_readme_flows_run(home):
    import re

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    flows = re.findall(r"```yaml\n(.*?)```", readme, re.S)
    assert len(flows) >= 3
    for source in flows:
        load_flow(source)
        if "dependencies:" not in source:  # installing from PyPI is covered by the slow tests
            ex = home.run(source)
            assert ex["state"] == "SUCCESS", ex


def test_storage_uris_in_commands_are_downloaded(home):
    ex = home.run(flow("""\
  - id: make
    type: scripts.Shell
    outputFiles: [data.txt]
    commands:
      - printf 'one\\ntwo\\n' > data.txt
  - id: count
    type: scripts.Shell
    beforeCommands:
      - test -f {{ outputs.make.outputFiles['data.txt'] }}
    commands:
      - wc -l < {{ outputs.make.outputFiles['data.txt'] }}
      - cat "{{ outputs.make.outputFiles['data.txt'] }}" | head -1
"""))
    assert ex["state"] == "SUCCESS", ex
    assert [m.strip() for _, m in home.lines(ex, "count")] == ["2", "one"]


def test_kestra_python_library_api(home):
    ex = home.run(flow("""\
  - id: py
    type: io.kestra.plugin.scripts.python.Script
    script: |
      from kestra import Kestra
      Kestra.outputs({"rows": 3})
      Kestra.counter("rows", 3, {"table": "users"})
      Kestra.timer("load", 0.5)
      Kestra.timer("work", lambda: sum(range(10)))
      Kestra.logger().warning("careful")
"""))
    assert ex["state"] == "SUCCESS", ex
    assert task_run(ex, "py")["outputs"]["vars"] == {"rows": 3}
    assert ("WARN", "careful") in home.lines(ex, "py")
    metrics = {(m["name"], m["type"]) for m in home.metrics(ex)}
    assert {("rows", "counter"), ("load", "timer"), ("work", "timer")} <= metrics


def _wheel(directory: Path) -> Path:
    """A minimal wheel of a module `tiercel_pip_probe`, so pip installs without the network."""
    import zipfile

    path = directory / "tiercel_pip_probe-1.0-py3-none-any.whl"
    info = "tiercel_pip_probe-1.0.dist-info"
    files = {"tiercel_pip_probe.py": "VALUE = 'installed'\n",
             f"{info}/METADATA": "Metadata-Version: 2.1\nName: tiercel-pip-probe\nVersion: 1.0\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


def test_pip_install_in_a_script_never_touches_the_workers_environment(home, tmp_path):
    import importlib.util
    import site

    wheel = _wheel(tmp_path)
    ex = home.run(flow(f"""\
  - id: install
    type: scripts.Python
    commands:
      - pip install --no-index --quiet --disable-pip-version-check {wheel}
      - python -c "import tiercel_pip_probe, requests_free_check; " 2>/dev/null || true
      - python -c "import tiercel_pip_probe; print(tiercel_pip_probe.VALUE)"
      - python -c "import tiercel; print('sees the worker packages')"
"""))
    assert ex["state"] == "SUCCESS", ex
    lines = [message for _, message in home.lines(ex, "install")]
    assert "installed" in lines and "sees the worker packages" in lines
    assert importlib.util.find_spec("tiercel_pip_probe") is None
    assert not any(Path(p, "tiercel_pip_probe.py").exists() for p in site.getsitepackages())


def test_deprecated_runner_forms_and_target_os(home):
    from tiercel.flow import load_flow

    flow_source = flow("""\
  - id: process
    type: io.kestra.plugin.scripts.shell.Commands
    runner: PROCESS
    targetOS: LINUX
    commands: [echo on the worker]
  - id: docker
    type: io.kestra.plugin.scripts.shell.Commands
    docker: {image: ubuntu:24.04}
    commands: [echo in a container]
""")
    loaded = load_flow(flow_source)
    assert loaded.task("process").taskRunner == {"type": "core.Process"}
    assert loaded.task("docker").taskRunner == {"type": "io.kestra.plugin.scripts.runner.docker.Docker",
                                                "image": "ubuntu:24.04"}
    ex = home.run(flow("""\
  - id: process
    type: scripts.Shell
    runner: PROCESS
    commands: [echo on the worker]
  - id: windows
    type: scripts.Shell
    targetOS: WINDOWS
    commands: [echo never]
"""))
    assert task_run(ex, "process")["state"] == "SUCCESS"
    assert "targetOS is WINDOWS" in task_run(ex, "windows")["error"]
