"""kubernetes.Kubernetes behind a script task, against the test cluster (kmock API server + a kubelet on Docker)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tiercel_kubernetes.runner import Kubernetes

from tiercel import ScriptJob, TaskError
from tiercel.testing import free_port, read_file, run_context, run_flow, task_run, write_file

FLOW = """\
id: kubernetes_e2e
namespace: company.team
inputs:
  - {id: master, type: STRING}
pluginDefaults:
  - type: scripts.Shell
    values:
      containerImage: tiercel/busybox:test
      taskRunner: {type: kubernetes.Kubernetes, config: {masterUrl: "{{ inputs.master }}", oauthToken: t},
                   pullPolicy: NEVER, labels: {team: data}}
tasks:
  - id: shell
    type: scripts.Shell
    namespaceFiles: {enabled: true}
    env: {GREETING: "hello, pod"}
    inputFiles:
      data/in.txt: "one\\ntwo\\nthree\\n"
    outputFiles: ["*.txt", "res/*.bin"]
    commands:
      - test "$WORKING_DIR" = "$PWD"
      - cat lib/common.sh > copy.txt
      - wc -l < data/in.txt > count.txt
      - mkdir -p res && head -c 3000 /dev/urandom > res/random.bin && cp res/random.bin "$OUTPUT_DIR/same.bin"
      - echo "$GREETING" > "$OUTPUT_DIR/greeting.out"
      - 'echo "::{\\"outputs\\": {\\"lines\\": $(cat count.txt)}}::"'
      - echo to stderr >&2
      - printf 'no newline at the end'
  - id: fails
    type: scripts.Shell
    allowFailure: true
    commands:
      - echo before
      - exit 3
"""


def test_script_task_as_a_pod(cluster, tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_file("tiercel://company/team/_files/lib/common.sh", b"shared = 1\n", home)
    logs: list[tuple[str | None, str, str]] = []
    execution = run_flow(FLOW, inputs={"master": cluster.url}, home=home, logs=logs)
    shell = task_run(execution, "shell")
    assert shell["state"] == "SUCCESS", execution
    assert shell["outputs"]["vars"] == {"lines": 3}
    files = shell["outputs"]["outputFiles"]
    assert sorted(files) == ["copy.txt", "count.txt", "greeting.out", "res/random.bin", "same.bin"]
    assert read_file(files["copy.txt"], home) == b"shared = 1\n"
    assert read_file(files["greeting.out"], home) == b"hello, pod\n"
    assert read_file(files["res/random.bin"], home) == read_file(files["same.bin"], home)
    assert len(read_file(files["same.bin"], home)) == 3000
    assert ("shell", "WARN", "to stderr") in logs
    assert ("shell", "INFO", "no newline at the end") in logs
    assert not [line for task, _, line in logs if task == "shell" and ":OUT" in line]
    assert task_run(execution, "fails")["state"] == "WARNING"
    assert any("exited with code 3" in message for task, _, message in logs if task == "fails")
    assert not cluster.running()


def test_pod_left_by_a_dead_worker_is_deleted_first(cluster, k8s_properties) -> None:
    """A pod labelled with the task run (its worker died mid-attempt) is deleted before the next attempt."""
    from lightkube import codecs
    from tiercel_kubernetes._run import client_for

    runner = Kubernetes.model_validate(k8s_properties)

    async def scenario() -> None:
        with run_context() as ctx:
            client, _ = client_for(runner)
            orphan = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": "orphan",
                    "namespace": "default",
                    "labels": {"tiercel.io/taskrun": ctx.task_run_id},
                },
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "tiercel/busybox:test", "command": ["sleep", "300"]}],
                },
            }
            await client.create(codecs.from_dict(orphan))
            for _ in range(100):
                if cluster.running():
                    break
                await asyncio.sleep(0.05)
            assert (await runner.run(ctx, ScriptJob(commands=[["true"]]))).exit_code == 0
            names = [p.metadata.name async for p in client.list(codecs.resource_registry.get("v1", "Pod"))]
            assert "orphan" not in names
            assert any("left running by an earlier attempt" in message for _, message in ctx.logs)
            await client.close()
        for _ in range(100):
            if not cluster.running():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the orphan pod's container still runs")

    asyncio.run(scenario())


def test_image_that_cannot_start_fails_at_once(cluster, k8s_properties) -> None:
    runner = Kubernetes.model_validate({**k8s_properties, "image": "tiercel/absent:none"})
    with run_context() as ctx, pytest.raises(TaskError, match="cannot start: ErrImageNeverPull"):
        asyncio.run(asyncio.wait_for(runner.run(ctx, ScriptJob(commands=[["true"]])), 20))


def test_unreachable_cluster_is_a_clear_error() -> None:
    address = f"http://127.0.0.1:{free_port()}"
    runner = Kubernetes.model_validate({"config": {"masterUrl": address, "oauthToken": "t"}, "image": "x"})
    with run_context() as ctx, pytest.raises(TaskError) as caught:
        asyncio.run(runner.run(ctx, ScriptJob(commands=[["true"]])))
    assert (
        address in str(caught.value)
        and "kubernetes.Kubernetes" in str(caught.value)
        and "unreachable" in str(caught.value)
    )
