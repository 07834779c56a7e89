"""ssh.SSH behind a script task, against a private OpenSSH sshd: what a flow author relies on."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from tiercel_ssh.runner import SSH

from tiercel import ScriptJob, TaskError
from tiercel.testing import read_file, run_context, run_flow, task_run, write_file

FLOW = """\
id: ssh_e2e
namespace: company.team
inputs:
  - {id: port, type: INT}
  - {id: key, type: STRING}
  - {id: known, type: STRING}
pluginDefaults:
  - type: scripts.Shell
    values:
      taskRunner: {type: ssh.SSH, host: 127.0.0.1, port: "{{ inputs.port }}", username: tiercel-test,
                   privateKey: "{{ inputs.key }}", knownHosts: "{{ inputs.known }}"}
tasks:
  - id: shell
    type: scripts.Shell
    namespaceFiles: {enabled: true}
    env: {GREETING: "hello, 'remote' host"}
    inputFiles:
      data/in.txt: "one\\ntwo\\nthree\\n"
    outputFiles: ["*.txt"]
    commands:
      - test "$WORKING_DIR" = "$PWD"
      - cat lib/common.sh > copy.txt
      - wc -l < data/in.txt | tr -d ' ' > count.txt
      - echo "$GREETING" > "$OUTPUT_DIR/greeting.out"
      - 'echo "::{\\"outputs\\": {\\"lines\\": $(cat count.txt), \\"user\\": \\"$(id -un)\\"}}::"'
      - echo to stderr >&2
  - id: fails
    type: scripts.Shell
    allowFailure: true
    commands:
      - echo before
      - exit 3
"""


def test_script_task_on_a_remote_host(ssh_server, tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_file("tiercel://company/team/_files/lib/common.sh", b"shared = 1\n", home)
    logs: list[tuple[str | None, str, str]] = []
    inputs = {"port": ssh_server.port, "key": ssh_server.private_key, "known": ssh_server.known_hosts}
    before = set(Path("/tmp").glob("tiercel-????????????????"))
    execution = run_flow(FLOW, inputs=inputs, home=home, logs=logs)
    shell = task_run(execution, "shell")
    assert shell["state"] == "SUCCESS", execution
    assert shell["outputs"]["vars"] == {"lines": 3, "user": "tiercel-test"}
    files = shell["outputs"]["outputFiles"]
    assert sorted(files) == ["copy.txt", "count.txt", "greeting.out"]
    assert read_file(files["copy.txt"], home) == b"shared = 1\n"
    assert read_file(files["greeting.out"], home) == b"hello, 'remote' host\n"
    assert ("shell", "WARN", "to stderr") in logs
    assert task_run(execution, "fails")["state"] == "WARNING"
    assert any("exited with code 3" in message for task, _, message in logs if task == "fails")
    assert set(Path("/tmp").glob("tiercel-????????????????")) <= before, "remote working directories were left behind"


def _session_processes(server_pid: int) -> list[int]:
    """The per-connection sshd processes (privileged and user side) below the listener."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat[stat.rfind(")") + 2 :].split()[1])
            names[int(entry.name)] = stat[stat.find("(") + 1 : stat.rfind(")")]
    found, frontier = [], {server_pid}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier}
        found += [pid for pid in frontier if names[pid] == "sshd"]
    return found


def test_connection_dropped_mid_run_fails_the_attempt(ssh_server) -> None:
    runner = SSH.model_validate(ssh_server.properties())

    async def scenario() -> None:
        started = asyncio.Event()
        job = ScriptJob(
            commands=[["sh", "-c", "echo started; sleep 30"]],
            on_stdout=lambda line: started.set() if line == "started" else None,
        )
        with run_context() as ctx:
            before = set(Path("/tmp").glob("tiercel-????????????????"))
            task = asyncio.create_task(runner.run(ctx, job))
            await asyncio.wait_for(started.wait(), 10)
            for pid in _session_processes(ssh_server.process.pid):
                os.kill(pid, signal.SIGKILL)
            with pytest.raises(TaskError, match="dropped mid-run"):
                await asyncio.wait_for(task, 10)
            assert not [d for d in Path("/tmp").glob("tiercel-????????????????") if d not in before], (
                "the remote directory was not removed over a new connection"
            )
            # the next attempt connects again
            assert (await runner.run(ctx, ScriptJob(commands=[["true"]]))).exit_code == 0

    asyncio.run(scenario())


def test_untrusted_host_key_is_refused(ssh_server) -> None:
    other = "[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGqKk0e6G1oVMaJ0bC8bEuQGmYxgUFK0z6mQ1WJNWcEr\n"
    runner = SSH.model_validate(ssh_server.properties(knownHosts=other))
    with run_context() as ctx, pytest.raises(TaskError, match="host key .* not trusted"):
        asyncio.run(runner.run(ctx, ScriptJob(commands=[["true"]])))
    insecure = SSH.model_validate(ssh_server.properties(knownHosts=other, strictHostKeyChecking=False))
    with run_context() as ctx:
        assert asyncio.run(insecure.run(ctx, ScriptJob(commands=[["true"]]))).exit_code == 0


def test_unreachable_host_is_a_clear_error(ssh_server) -> None:
    from tiercel.testing import free_port

    port = free_port()
    runner = SSH.model_validate(ssh_server.properties(port=port))
    with run_context() as ctx, pytest.raises(TaskError) as caught:
        asyncio.run(runner.run(ctx, ScriptJob(commands=[["true"]])))
    assert f"tiercel-test@127.0.0.1:{port}" in str(caught.value) and "sshd" in str(caught.value)
