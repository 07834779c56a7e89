"""How ``kubernetes.Kubernetes`` runs a job without ``exec``: a ConfigMap carries the inputs in,
a shell wrapper (the container's command) copies them into the working directory, runs the
commands with stderr lines tagged, stops what they left running, and writes the output files
to the log as a base64 tar stream between two tagged lines. The runner reads the one log stream
and splits it back into stdout, stderr and files.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import secrets
import shlex
import tempfile
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from tiercel import RunContext, ScriptJob, ScriptResult, TaskError
from tiercel.runners import OUTPUT_DIR_NAME, LineSplitter, check_relative, extract_outputs, shell_script

if TYPE_CHECKING:
    from lightkube import AsyncClient

    from tiercel_kubernetes.runner import Kubernetes

WORK = "/tiercel/work"
INPUTS = "/tiercel/in"
#: Key under which the pod is tracked with the attempt.
TRACK_KEY = "kubernetes.pod"
TAIL_LINES = 20
#: What a ConfigMap holds (etcd's object limit, less room for the metadata).
MAX_INPUT_BYTES = 1_000_000
#: Container states that will not start without a change on the cluster.
STUCK = {
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "ErrImageNeverPull",
}
PULL = {"ALWAYS": "Always", "IF_NOT_PRESENT": "IfNotPresent", "NEVER": "Never"}


class KubernetesTimeout(TaskError, TimeoutError):
    """The commands ran past the job's timeout (their pod was deleted)."""


def client_for(runner: Kubernetes) -> tuple[AsyncClient, str]:
    """A lightkube client for *runner*'s cluster and a description of where it is, for errors."""
    from lightkube import AsyncClient, KubeConfig
    from lightkube.core.exceptions import ConfigError

    if runner.config:
        c = runner.config
        cluster: dict[str, Any] = {"server": c.masterUrl, "insecure-skip-tls-verify": c.trustCerts}
        if c.caCertData:
            cluster["certificate-authority-data"] = base64.b64encode(c.caCertData.encode()).decode()
        user: dict[str, Any] = {"token": c.oauthToken} if c.oauthToken else {}
        if c.clientCertData and c.clientKeyData:
            user["client-certificate-data"] = base64.b64encode(c.clientCertData.encode()).decode()
            user["client-key-data"] = base64.b64encode(c.clientKeyData.encode()).decode()
        config = KubeConfig.from_dict(
            {
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": user or {"token": ""}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
        where = c.masterUrl
    else:
        try:
            config = KubeConfig.from_env()
        except ConfigError as exc:
            raise TaskError(
                f"kubernetes.Kubernetes: no cluster configured ({exc}); set `config.masterUrl` (and a "
                f"token), KUBECONFIG, ~/.kube/config, or run the worker in a pod"
            ) from None
        where = config.cluster.server if config.cluster else "the configured cluster"
    return AsyncClient(config=config, namespace=runner.namespace), where


def _label(value: str) -> str:
    """*value* as a valid label value (63 characters of [A-Za-z0-9_.-], alphanumeric at both ends)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", value)[:63].strip("_.-") or "none"


def _labels(ctx: RunContext) -> dict[str, str]:
    labels = {
        "app.kubernetes.io/managed-by": "tiercel",
        "tiercel.io/flow": _label(ctx.flow_id),
        "tiercel.io/attempt": str(ctx.attempt),
    }
    if ctx.execution_id:
        labels["tiercel.io/execution"] = _label(ctx.execution_id)
    if ctx.task_run_id:
        labels["tiercel.io/taskrun"] = _label(ctx.task_run_id)
    return labels


def wrapper(token: str, job: ScriptJob, inputs: list[str]) -> str:
    """The container's shell script: inputs in, commands with tagged stderr, leftovers stopped,
    output files out as base64 tar between tagged lines, the commands' exit code."""
    q = shlex.quote
    lines = [f"T={token}", f"cd {WORK} || exit 125", f"mkdir -p {OUTPUT_DIR_NAME}"]
    for name in inputs:
        parent = str(Path(name).parent)
        if parent != ".":
            lines.append(f"mkdir -p {q(parent)}")
        lines.append(f"cp {q(INPUTS + '/' + name)} {q(name)} || exit 125")
    lines += [
        'F=/tmp/.tiercel-err.$$; mkfifo "$F" || exit 125',
        '(while IFS= read -r l || [ -n "$l" ]; do printf \'%s:E %s\\n\' "$T" "$l"; l=; done < "$F") >&2 &',
        "R=$!",
        f'( exec 2>"$F"; {shell_script(job.commands, job.fail_fast)}\n)',
        "rc=$?",
        # like core.Process: what the commands left running is stopped once they end
        'for d in /proc/[0-9]*; do p=${d#/proc/}; [ "$p" = 1 ] || [ "$p" = $$ ] || [ "$p" = "$R" ] '
        '|| kill -TERM "$p" 2>/dev/null; done',
        'wait "$R"; rm -f "$F"',
        "set --",
    ]
    for pattern in job.output_files:
        check_relative(pattern, "output file pattern")
        lines.append(f'for f in {pattern.replace("**", "*")}; do [ -f "$f" ] && set -- "$@" "$f"; done')
    lines += [
        f'[ -n "$(ls -A {OUTPUT_DIR_NAME} 2>/dev/null)" ] && set -- "$@" {OUTPUT_DIR_NAME}',
        "printf '\\n%s:OUT\\n' \"$T\"",
        '[ $# -gt 0 ] && tar -cf - "$@" | base64',
        'printf \'%s:END %s\\n\' "$T" "$rc"',
        "exit $rc",
    ]
    return "\n".join(lines)


def _pod(
    runner: Kubernetes, ctx: RunContext, job: ScriptJob, name: str, token: str, items: list[dict[str, str]]
) -> dict[str, Any]:
    env = {**{k: str(v) for k, v in job.env.items()}, "WORKING_DIR": WORK, "OUTPUT_DIR": f"{WORK}/{OUTPUT_DIR_NAME}"}
    container: dict[str, Any] = {
        "name": "main",
        "image": runner.image,
        "command": ["/bin/sh", "-c", wrapper(token, job, [i["path"] for i in items])],
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "workingDir": WORK,
        "volumeMounts": [{"name": "work", "mountPath": WORK}],
    }
    volumes: list[dict[str, Any]] = [{"name": "work", "emptyDir": {}}]
    if items:
        container["volumeMounts"].append({"name": "inputs", "mountPath": INPUTS, "readOnly": True})
        volumes.append({"name": "inputs", "configMap": {"name": name, "items": items}})
    if runner.pullPolicy:
        container["imagePullPolicy"] = PULL[runner.pullPolicy]
    if runner.resources:
        container["resources"] = runner.resources
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": volumes,
        "terminationGracePeriodSeconds": max(1, round(runner.killGracePeriod.total_seconds())),
    }
    if runner.user is not None:
        spec["securityContext"] = {"runAsUser": runner.user, "fsGroup": runner.user}
    for key, value in (
        ("serviceAccountName", runner.serviceAccountName),
        ("nodeSelector", runner.nodeSelector),
        ("tolerations", runner.tolerations),
    ):
        if value:
            spec[key] = value
    if runner.imagePullSecrets:
        spec["imagePullSecrets"] = [{"name": s} for s in runner.imagePullSecrets]
    metadata = {
        "name": name,
        "namespace": runner.namespace,
        "labels": {**(runner.labels or {}), **_labels(ctx)},
        "annotations": dict(runner.annotations or {}),
    }
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


async def run_job(runner: Kubernetes, ctx: RunContext, job: ScriptJob) -> ScriptResult:
    import httpx2
    from lightkube import ApiError

    if not runner.image:
        raise TaskError(
            "kubernetes.Kubernetes: no image: set `containerImage` on the task or `image` on the taskRunner"
        )
    client, where = client_for(runner)
    try:
        return await _run(client, runner, ctx, job)
    except (httpx2.TransportError, OSError) as exc:
        raise TaskError(
            f"kubernetes.Kubernetes: the cluster at {where} is unreachable ({exc or type(exc).__name__}); "
            f"check `config.masterUrl` / the kubeconfig and that the API server answers"
        ) from None
    except ApiError as exc:
        raise TaskError(
            f"kubernetes.Kubernetes: the cluster at {where} refused a request: {exc.status.message} "
            f"(namespace `{runner.namespace}`; check the service account's rights)"
        ) from None
    finally:
        await client.close()


async def _leftovers(client: AsyncClient, runner: Kubernetes, ctx: RunContext) -> list[tuple[str, str]]:
    """Pods an earlier attempt of this task run left (its worker died) that still exist: tracked
    ones, and any labelled with this task run (a worker may die before its tracking is written)."""
    import httpx2
    from lightkube import ApiError
    from lightkube.resources.core_v1 import Pod

    names = {
        (left[TRACK_KEY]["namespace"], left[TRACK_KEY]["name"])
        for left in ctx.leftovers
        if isinstance(left.get(TRACK_KEY), dict)
    }
    if ctx.task_run_id:
        selector = {"tiercel.io/taskrun": _label(ctx.task_run_id)}
        async for pod in client.list(Pod, namespace=runner.namespace, labels=selector):
            labels = (pod.metadata.labels if pod.metadata else None) or {}
            if pod.metadata and all(labels.get(k) == v for k, v in selector.items()):
                names.add((pod.metadata.namespace or runner.namespace, pod.metadata.name or ""))
    found = []
    for namespace, name in sorted(names):
        try:
            await client.get(Pod, name, namespace=namespace)
            found.append((namespace, name))
        except ApiError as exc:
            if exc.status.code != 404:
                raise
        except httpx2.HTTPStatusError as exc:
            if exc.response.status_code != 404:
                raise
    return found


async def _delete(client: AsyncClient, namespace: str, name: str, grace: int) -> None:
    import httpx2
    from lightkube import ApiError
    from lightkube.resources.core_v1 import ConfigMap, Pod

    for kind in (Pod, ConfigMap):
        try:
            await client.delete(kind, name, namespace=namespace, grace_period=grace)
        except ApiError as exc:
            if exc.status.code != 404:
                raise
        except httpx2.HTTPStatusError as exc:  # a 404 whose body is not a Status
            if exc.response.status_code != 404:
                raise


async def _run(client: AsyncClient, runner: Kubernetes, ctx: RunContext, job: ScriptJob) -> ScriptResult:
    from lightkube import codecs

    leftovers = await _leftovers(client, runner, ctx)
    resumed = None
    if runner.resume:  # re-attach to the pod of an attempt whose worker died, instead of a second run
        resumed = next(((ns, n) for ns, n in leftovers if ns == runner.namespace and n.startswith("tiercel-")), None)
    for namespace, old in leftovers:
        if (namespace, old) != resumed:
            await _delete(client, namespace, old, 0)
            ctx.logger.warning("deleted pod %s left running by an earlier attempt", old)
    token = resumed[1].removeprefix("tiercel-") if resumed else secrets.token_hex(8)
    name = f"tiercel-{token}"
    grace = max(1, round(runner.killGracePeriod.total_seconds()))
    items, data = _input_items(job)
    ctx.track(TRACK_KEY, {"namespace": runner.namespace, "name": name})
    deleted = False
    follow: asyncio.Future[int] | None = None
    try:
        if resumed:
            ctx.logger.info("re-attached to pod %s, started by an earlier attempt (resume: true)", name)
        elif items:
            await client.create(
                codecs.from_dict(
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "binaryData": data,
                        "metadata": {"name": name, "namespace": runner.namespace, "labels": _labels(ctx)},
                    }
                )
            )
        if not resumed:
            await client.create(codecs.from_dict(_pod(runner, ctx, job, name, token, items)))
        reader = _LogReader(token, job, Path(ctx.working_dir) / "outputs")
        follow = asyncio.ensure_future(_follow(client, runner, name, reader))
        follow.add_done_callback(lambda t: t.cancelled() or t.exception())  # read even when abandoned
        done, _ = await asyncio.wait([follow], timeout=job.timeout)
        if not done:
            follow.cancel()
            deleted = True
            await asyncio.shield(_delete(client, runner.namespace, name, grace))
            raise KubernetesTimeout(f"timed out after {job.timeout:g} s; the pod and everything in it were deleted")
        code = follow.result()
        if reader.errors:
            raise reader.errors[0]
        return ScriptResult(code, reader.outputs(job.output_files), "\n".join(reader.tail))
    except BaseException:
        if follow is not None:
            follow.cancel()
        if not deleted:
            deleted = True
            with contextlib.suppress(Exception):
                await asyncio.shield(_delete(client, runner.namespace, name, grace))
        raise
    finally:
        if runner.delete and not deleted:
            with contextlib.suppress(Exception):
                await asyncio.shield(_delete(client, runner.namespace, name, grace))
        ctx.track(TRACK_KEY, None)


def _input_items(job: ScriptJob) -> tuple[list[dict[str, str]], dict[str, str]]:
    items: list[dict[str, str]] = []
    data: dict[str, str] = {}
    total = 0
    for i, (name, content) in enumerate(job.input_files.items()):
        path = str(check_relative(name, "input file"))
        raw = content.read_bytes() if isinstance(content, Path) else content
        total += len(raw)
        if total > MAX_INPUT_BYTES:
            raise TaskError(
                f"kubernetes.Kubernetes: the input files hold more than {MAX_INPUT_BYTES:,} bytes, the most a "
                f"ConfigMap carries; fetch large data from inside the pod (object storage, a volume)"
            )
        data[f"f{i}"] = base64.b64encode(raw).decode()
        items.append({"key": f"f{i}", "path": path})
    return items, data


async def _wait_started(client: AsyncClient, runner: Kubernetes, name: str) -> None:
    """Until the container started (or already ended); a TaskError when it cannot start."""
    from lightkube.resources.core_v1 import Pod

    loop = asyncio.get_running_loop()
    deadline = loop.time() + runner.waitUntilRunning.total_seconds()
    delay = 0.05
    while True:
        pod = await client.get(Pod, name, namespace=runner.namespace)
        status = pod.status
        if status and status.phase in ("Running", "Succeeded", "Failed"):
            return
        for cs in (status.containerStatuses or []) if status else []:
            waiting = cs.state.waiting if cs.state else None
            if waiting and waiting.reason in STUCK:
                raise TaskError(
                    f"kubernetes.Kubernetes: pod {name} cannot start: {waiting.reason}"
                    + (f" ({waiting.message})" if waiting.message else "")
                    + f"; check the image `{runner.image}` and pullPolicy / imagePullSecrets"
                )
        if loop.time() > deadline:
            raise TaskError(
                f"kubernetes.Kubernetes: pod {name} did not start within "
                f"{runner.waitUntilRunning.total_seconds():g} s (waitUntilRunning); phase "
                f"{status.phase if status else 'unknown'}"
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


async def _follow(client: AsyncClient, runner: Kubernetes, name: str, reader: _LogReader) -> int:
    """Stream the pod's log through *reader*; return the commands' exit code."""
    from lightkube.resources.core_v1 import Pod

    await _wait_started(client, runner, name)
    async for line in client.log(name, namespace=runner.namespace, container="main", follow=True, newlines=False):
        reader.line(line)
    reader.close()
    if reader.exit_code is not None:
        return reader.exit_code
    for _ in range(50):  # the log ended early (the container was killed): ask the pod
        pod = await client.get(Pod, name, namespace=runner.namespace)
        for cs in (pod.status.containerStatuses or []) if pod.status else []:
            if cs.state and cs.state.terminated:
                return int(cs.state.terminated.exitCode)
        await asyncio.sleep(0.1)
    raise TaskError(f"kubernetes.Kubernetes: pod {name}'s log ended without an exit code (was it evicted?)")


class _LogReader:
    """Splits the pod's one log stream into stdout lines, tagged stderr lines and the output tar."""

    def __init__(self, token: str, job: ScriptJob, dest: Path) -> None:
        self.job, self.dest = job, dest
        self.err_tag, self.out_tag, self.end_tag = f"{token}:E ", f"{token}:OUT", f"{token}:END "
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.errors: list[BaseException] = []
        self.archive: IO[bytes] | None = None
        self.pending_blank = False
        self.exit_code: int | None = None
        self.split = LineSplitter(self._line)

    def _deliver(self, callback: Callable[[str], None] | None, line: str) -> None:
        if callback is not None and not self.errors:
            try:
                callback(line)
            except Exception as exc:
                self.errors.append(exc)

    def line(self, text: str) -> None:
        self.split.feed(text + "\n")

    def close(self) -> None:
        self.split.close()

    def _line(self, line: str) -> None:
        if self.archive is not None and line.startswith(self.err_tag):
            # the log interleaves the two streams loosely: a stderr line may land among (or after) the archive
            self._stderr(line[len(self.err_tag) :])
            return
        if self.exit_code is not None:
            return
        if self.archive is not None:
            if line.startswith(self.end_tag):
                self.exit_code = int(line[len(self.end_tag) :].strip() or -1)
            elif line:
                self.archive.write(base64.b64decode(line))
            return
        if line.endswith(self.out_tag):  # the wrapper printed "\n<token>:OUT": a blank line or a partial one before it
            prefix = line[: -len(self.out_tag)]
            if prefix:
                self._stdout(prefix)
            self.pending_blank = False
            self.archive = tempfile.SpooledTemporaryFile(max_size=8 << 20)
            return
        if self.pending_blank:
            self.pending_blank = False
            self._stdout("")
        if line.startswith(self.err_tag):
            self._stderr(line[len(self.err_tag) :])
        elif line == "":
            self.pending_blank = True  # may be the wrapper's own newline before the archive
        else:
            self._stdout(line)

    def _stderr(self, message: str) -> None:
        self.tail.append(message)
        self._deliver(self.job.on_stderr, message)

    def _stdout(self, line: str) -> None:
        self._deliver(self.job.on_stdout, line)

    def outputs(self, globs: list[str]) -> dict[str, Path]:
        if self.archive is None or self.archive.tell() == 0:
            return {}
        self.dest.mkdir(parents=True, exist_ok=True)
        self.archive.seek(0)
        with self.archive:
            return extract_outputs(self.archive, self.dest, globs)
