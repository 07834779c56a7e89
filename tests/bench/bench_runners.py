"""Start-to-end time of a trivial command (`true`) on each task runner, and its overhead over the
process runner: median of N runs each (default 20), interleaved so each runner sees the same load.

- core.Process: a local subprocess;
- ssh.SSH: a private OpenSSH sshd on loopback (as scripts/services/sshd.sh's user), one connection
  reused as a worker does;
- docker.Docker: the test engine (scripts/services/docker.sh), image tiercel/busybox:test, beside
  the engine's own floor (create, start, wait, remove of `true` through the API);
- kubernetes.Kubernetes: kmock's API emulator + the test kubelet on the same Docker engine (not a
  real cluster: the figure is the runner's API and log round trips plus a container's start).

Targets on 2 cores (issue #13): ssh <= 150 ms and docker <= 700 ms over the process runner.
Run: .venv/bin/python tests/bench/bench_runners.py [runs]. Prints figures; asserts nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TARGETS = {"ssh.SSH": 0.150, "docker.Docker": 0.700}


class EngineFloor:
    """What any Docker runner pays: create, start, wait and remove a container running `true`."""

    type = "docker engine floor"

    def __init__(self, url: str) -> None:
        import docker

        self.api = docker.DockerClient(base_url=url).api

    def _once(self) -> None:
        cid = self.api.create_container(
            "tiercel/busybox:test", command=["true"], host_config=self.api.create_host_config(network_mode="none")
        )["Id"]
        self.api.start(cid)
        self.api.wait(cid)
        self.api.remove_container(cid, force=True)

    async def run(self, ctx: Any, job: Any) -> Any:
        from tiercel import ScriptResult

        await asyncio.to_thread(self._once)
        return ScriptResult(0)


async def _time(runner: Any, ctx: Any) -> float:
    from tiercel import ScriptJob

    start = time.perf_counter()
    result = await runner.run(ctx, ScriptJob(commands=[["true"]]))
    elapsed = time.perf_counter() - start
    if result.exit_code != 0:
        raise SystemExit(f"{type(runner).type}: `true` exited {result.exit_code}: {result.stderr_tail}")
    return elapsed


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    from tiercel.core.runner import Process
    from tiercel.testing import run_context
    from tiercel.testing.services import docker_host

    with contextlib.ExitStack() as stack:
        runners: dict[str, Any] = {"core.Process": Process()}
        docker = stack.enter_context(docker_host())
        from tiercel_docker.runner import Docker

        runners["docker engine floor"] = EngineFloor(docker.url)
        runners["docker.Docker"] = Docker(host=docker.url, image="tiercel/busybox:test", networkMode="none")
        sys.path.insert(0, str(ROOT / "plugins" / "tiercel-ssh" / "tests"))
        from conftest import sshd_missing, start_sshd  # type: ignore[import-not-found]

        if sshd_missing() is None:
            from tiercel_ssh.runner import SSH

            server = stack.enter_context(start_sshd())
            runners["ssh.SSH"] = SSH.model_validate(server.properties())
        else:
            print(f"ssh.SSH: skipped ({sshd_missing()}; run scripts/services/sshd.sh)")
        sys.path.insert(0, str(ROOT / "plugins" / "tiercel-kubernetes" / "tests"))
        from cluster import Cluster  # type: ignore[import-not-found]
        from tiercel_kubernetes.runner import Kubernetes

        cluster = Cluster(docker.url).start()
        stack.callback(cluster.stop)
        runners["kubernetes.Kubernetes"] = Kubernetes.model_validate(
            {
                "config": {"masterUrl": cluster.url, "oauthToken": "t"},
                "image": "tiercel/busybox:test",
                "pullPolicy": "NEVER",
            }
        )

        async def measure() -> dict[str, list[float]]:
            times: dict[str, list[float]] = {name: [] for name in runners}
            with run_context() as ctx:
                for runner in runners.values():
                    await _time(runner, ctx)  # warm: imports, connections, page cache
                for _ in range(runs):
                    for name, runner in runners.items():
                        times[name].append(await _time(runner, ctx))
            return times

        times = asyncio.run(measure())
    base = statistics.median(times["core.Process"])
    print(f"{'runner':24} {'median':>9} {'best':>9} {'overhead':>10}   target   (median of {runs})")
    for name, values in times.items():
        median = statistics.median(values)
        target = TARGETS.get(name)
        print(
            f"{name:24} {median * 1000:7.1f}ms {min(values) * 1000:7.1f}ms {(median - base) * 1000:8.1f}ms"
            f"   {f'<= {target * 1000:.0f} ms' if target else ''}"
        )


if __name__ == "__main__":
    main()
