"""docker.Docker behind a script task, against a real Docker engine: what a flow author relies on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tiercel_docker.runner import Docker

from tiercel import ScriptJob, TaskError
from tiercel.testing import read_file, run_context, run_flow, task_run, write_file

IMAGE = "tiercel/busybox:test"

FLOW = """\
id: docker_e2e
namespace: company.team
inputs:
  - {id: host, type: STRING}
pluginDefaults:
  - type: scripts.Shell
    values:
      containerImage: tiercel/busybox:test
      taskRunner: {type: docker.Docker, host: "{{ inputs.host }}", networkMode: none, memory: {memory: 64MB}}
tasks:
  - id: shell
    type: scripts.Shell
    namespaceFiles: {enabled: true}
    env: {GREETING: "hello, container"}
    inputFiles:
      data/in.txt: "one\\ntwo\\nthree\\n"
    outputFiles: ["*.txt"]
    commands:
      - test "$WORKING_DIR" = "$PWD"
      - cat lib/common.sh > copy.txt
      - wc -l < data/in.txt > count.txt
      - echo "$GREETING" > "$OUTPUT_DIR/greeting.out"
      - 'echo "::{\\"outputs\\": {\\"lines\\": $(cat count.txt), \\"user\\": \\"$(id -u)\\"}}::"'
      - echo to stderr >&2
  - id: fails
    type: scripts.Shell
    allowFailure: true
    commands:
      - echo before
      - exit 3
"""


def test_script_task_in_a_container(docker_host: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_file("tiercel://company/team/_files/lib/common.sh", b"shared = 1\n", home)
    logs: list[tuple[str | None, str, str]] = []
    execution = run_flow(FLOW, inputs={"host": docker_host}, home=home, logs=logs)
    shell = task_run(execution, "shell")
    assert shell["state"] == "SUCCESS", execution
    outputs = shell["outputs"]
    assert outputs["vars"] == {"lines": 3, "user": "0"}
    files = outputs["outputFiles"]
    assert sorted(files) == ["copy.txt", "count.txt", "greeting.out"]
    assert read_file(files["copy.txt"], home) == b"shared = 1\n"
    assert read_file(files["greeting.out"], home) == b"hello, container\n"
    assert ("shell", "WARN", "to stderr") in logs
    failed = task_run(execution, "fails")
    assert failed["state"] == "WARNING"
    assert ("fails", "INFO", "before") in logs
    assert any("exited with code 3" in message for task, _, message in logs if task == "fails")


def test_container_left_by_a_dead_worker_is_removed_first(docker_host: str) -> None:
    """A container labelled with the task run (its worker died mid-attempt) is removed before the
    next attempt starts, so the task never runs twice side by side."""
    import docker

    client = docker.DockerClient(base_url=docker_host)
    runner = Docker(host=docker_host, image=IMAGE, networkMode="none")
    with run_context() as ctx:
        orphan = client.containers.run(
            IMAGE, ["sleep", "300"], detach=True, network_mode="none", labels={"tiercel.taskrun": ctx.task_run_id or ""}
        )
        try:
            result = asyncio.run(runner.run(ctx, ScriptJob(commands=[["true"]])))
            assert result.exit_code == 0
            with pytest.raises(docker.errors.NotFound):
                client.containers.get(orphan.id)
            assert any("left running by an earlier attempt" in message for _, message in ctx.logs)  # type: ignore[attr-defined]
        finally:
            try:
                orphan.remove(force=True)
            except docker.errors.NotFound:
                pass


def test_unreachable_engine_is_a_clear_error(tmp_path: Path) -> None:
    address = f"unix://{tmp_path}/nothing.sock"
    runner = Docker(host=address, image=IMAGE)
    with run_context() as ctx, pytest.raises(TaskError) as caught:
        asyncio.run(runner.run(ctx, ScriptJob(commands=[["true"]])))
    assert address in str(caught.value) and "docker.Docker" in str(caught.value) and "dockerd" in str(caught.value)


def test_missing_image_with_pull_policy_never(docker_host: str) -> None:
    runner = Docker(host=docker_host, image="tiercel/absent:none", pullPolicy="NEVER")
    with run_context() as ctx, pytest.raises(TaskError, match="tiercel/absent:none.*NEVER"):
        asyncio.run(runner.run(ctx, ScriptJob(commands=[["true"]])))


def test_volumes_refused_unless_the_worker_allows_them(docker_host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIERCEL_DOCKER_VOLUMES_ENABLED", raising=False)
    runner = Docker(host=docker_host, image=IMAGE, networkMode="none", volumes=["/etc:/host-etc:ro"])
    with run_context() as ctx, pytest.raises(TaskError, match="TIERCEL_DOCKER_VOLUMES_ENABLED"):
        asyncio.run(runner.run(ctx, ScriptJob(commands=[["cat", "/host-etc/hostname"]])))


PYTHON_FLOW = """\
id: python_in_docker
namespace: company.team
inputs:
  - {id: host, type: STRING}
tasks:
  - id: py
    type: scripts.Python
    containerImage: tiercel/python:test
    taskRunner: {type: docker.Docker, host: "{{ inputs.host }}", networkMode: none}
    inputFiles:
      numbers.txt: "1\\n2\\n3\\n"
    script: |
      import sys
      from tiercel_scripts.helper import outputs
      total = sum(int(line) for line in open("numbers.txt"))
      outputs(total=total, python=sys.executable)
"""


def test_python_script_runs_on_the_image_python(docker_host: str, tmp_path: Path) -> None:
    """scripts.Python in a container runs the image's python3 (not the worker's interpreter), helper included."""
    import docker

    from tiercel.testing.services import require

    if not docker.DockerClient(base_url=docker_host).images.list(name="tiercel/python"):
        require("Docker image tiercel/python:test", "scripts/services/docker.sh builds it (debootstrap, once)")
    execution = run_flow(PYTHON_FLOW, inputs={"host": docker_host}, home=tmp_path / "home")
    py = task_run(execution, "py")
    assert py["state"] == "SUCCESS", execution
    assert py["outputs"]["vars"] == {"total": 6, "python": "/usr/bin/python3"}


def test_files_both_ways_as_another_user(docker_host: str) -> None:
    """With `user`, the commands can still read the inputs and write outputs (the directories are world-writable)."""
    runner = Docker(host=docker_host, image=IMAGE, networkMode="none", user="1000:1000")
    job = ScriptJob(
        commands=[["sh", "-c", 'id -u > uid.txt; cat in/data.txt > "$OUTPUT_DIR/copy.txt"']],
        input_files={"in/data.txt": b"data\n"},
        output_files=["*.txt"],
    )
    with run_context() as ctx:
        result = asyncio.run(runner.run(ctx, job))
        assert result.exit_code == 0, result.stderr_tail
        assert {name: path.read_bytes() for name, path in result.output_files.items()} == {
            "uid.txt": b"1000\n",
            "copy.txt": b"data\n",
        }
