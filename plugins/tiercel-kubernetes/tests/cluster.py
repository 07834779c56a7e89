"""A test-only Kubernetes: kmock's KubernetesEmulator (a real HTTP API server on loopback, objects
in memory) plus a small "kubelet" that runs each pod created there as a container on the local
Docker engine, patches the pod's status as it starts and ends, serves its log, and stops the
container (SIGTERM, SIGKILL after the grace period) when the pod is deleted.

What it runs for real: the API flow (create, get, list, log with follow, delete), the pod's
command, env, working directory, emptyDir and ConfigMap volumes (items with nested paths), exit
codes. What it does not model: scheduling, image pulls, resources, service accounts, RBAC.
"""

from __future__ import annotations

import asyncio
import base64
import io
import tarfile
import threading
from collections.abc import AsyncIterator
from typing import Any

import docker
import kmock

LABEL = "tiercel.test-kubelet"


def _status(container: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": container["name"],
        "image": container["image"],
        "imageID": "",
        "ready": "running" in state,
        "restartCount": 0,
        "state": state,
    }


class Cluster:
    """The emulator and its kubelet on an event loop of their own, in a daemon thread."""

    def __init__(self, docker_host: str, image_ok: str = "tiercel/busybox:test") -> None:
        self.docker = docker.DockerClient(base_url=docker_host)
        self.containers: dict[tuple[str, str], str] = {}
        self.deleted: set[tuple[str, str]] = set()
        self.started: list[str] = []  # names of the pods the kubelet ran, in order
        self._tasks: set[asyncio.Task[None]] = set()
        self.url = ""
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(self._main(),), daemon=True, name="test-kubernetes"
        )

    def start(self) -> Cluster:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the Kubernetes emulator did not start")
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        for cid in list(self.containers.values()):
            self._remove(cid)

    def running(self) -> list[str]:
        """Containers of pods still running."""
        return [c.id for c in self.docker.containers.list(filters={"label": LABEL})]

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        emu = kmock.KubernetesEmulator()
        emu.resources["v1/pods"] = {}
        emu.resources["v1/configmaps"] = {}
        pods = kmock.resource("v1/pods")
        emu["get", pods, kmock.subresource("log")] << self._logs
        emu["post", pods] << (lambda request: self._spawn(emu, request.data))
        emu["delete", pods] << (lambda request: self._kill(request))
        async with emu, kmock.Server(emu) as server:
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    # --- the kubelet ------------------------------------------------------------------------
    def _spawn(self, emu: kmock.KubernetesEmulator, pod: dict[str, Any]) -> None:
        # (a reaction returning None would be disabled by kmock after its first request)
        task = asyncio.get_running_loop().create_task(self._run_pod(emu, pod))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        raise NotImplementedError  # seen, not answered: the emulator stores and returns the pod

    async def _run_pod(self, emu: kmock.KubernetesEmulator, pod: dict[str, Any]) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        ns, name = meta.get("namespace", "default"), meta["name"]
        self.started.append(name)
        status_url = f"/api/v1/namespaces/{ns}/pods/{name}/status"
        container = spec["containers"][0]
        files: dict[str, bytes] = {}
        dirs: list[str] = []
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for mount in container.get("volumeMounts", []):
            volume, root = volumes[mount["name"]], mount["mountPath"].strip("/")
            dirs.append(root)
            if "configMap" in volume:
                async with emu.get(f"/api/v1/namespaces/{ns}/configmaps/{volume['configMap']['name']}") as resp:
                    cm = await resp.json()
                binary = cm.get("binaryData") or {}
                for item in volume["configMap"].get("items") or [{"key": k, "path": k} for k in binary]:
                    files[f"{root}/{item['path']}"] = base64.b64decode(binary[item["key"]])
        try:
            cid = await asyncio.to_thread(self._create, container, ns, name, dirs, files)
        except docker.errors.ImageNotFound:
            await self._patch(
                emu,
                status_url,
                {
                    "phase": "Pending",
                    "containerStatuses": [
                        _status(
                            container,
                            {
                                "waiting": {
                                    "reason": "ErrImageNeverPull",
                                    "message": f"image {container['image']} is not present",
                                }
                            },
                        )
                    ],
                },
            )
            return
        if (ns, name) in self.deleted:  # deleted while its container was being made
            await asyncio.to_thread(self._remove, cid)
            return
        self.containers[(ns, name)] = cid
        await asyncio.to_thread(self.docker.api.start, cid)
        await self._patch(
            emu, status_url, {"phase": "Running", "containerStatuses": [_status(container, {"running": {}})]}
        )
        result = await asyncio.to_thread(self.docker.api.wait, cid)
        code = int(result.get("StatusCode", -1))
        await self._patch(
            emu,
            status_url,
            {
                "phase": "Succeeded" if code == 0 else "Failed",
                "containerStatuses": [_status(container, {"terminated": {"exitCode": code}})],
            },
        )

    def _create(self, container: dict[str, Any], ns: str, name: str, dirs: list[str], files: dict[str, bytes]) -> str:
        env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
        created = self.docker.api.create_container(
            container["image"],
            command=container.get("args"),
            entrypoint=container.get("command"),
            environment=env,
            working_dir=container.get("workingDir"),
            labels={LABEL: f"{ns}/{name}"},
            host_config=self.docker.api.create_host_config(network_mode="none"),
        )
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for path in dirs:
                parts = path.split("/")
                for i in range(1, len(parts) + 1):
                    info = tarfile.TarInfo("/".join(parts[:i]))
                    info.type, info.mode = tarfile.DIRTYPE, 0o777
                    tar.addfile(info)
            for path, data in files.items():
                info = tarfile.TarInfo(path)
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
        self.docker.api.put_archive(created["Id"], "/", buffer.getvalue())
        return str(created["Id"])

    async def _patch(self, emu: kmock.KubernetesEmulator, url: str, status: dict[str, Any]) -> None:
        async with emu.patch(url, json={"status": status}, headers={"Content-Type": "application/merge-patch+json"}):
            pass  # a 404 means the pod was deleted meanwhile

    def _kill(self, request: kmock.Request) -> None:
        key = (request.namespace or "default", request.name or "")
        self.deleted.add(key)
        cid = self.containers.pop(key, None)
        if cid is not None:
            given = request.params.get("gracePeriodSeconds", (request.data or {}).get("gracePeriodSeconds"))
            grace = 30 if given is None else int(given)
            threading.Thread(target=self._stop_container, args=(cid, grace), daemon=True).start()
        raise NotImplementedError  # seen, not answered: the emulator deletes the pod

    def _stop_container(self, cid: str, grace: int) -> None:
        try:
            self.docker.api.stop(cid, timeout=grace)
        finally:
            self._remove(cid)

    def _remove(self, cid: str) -> None:
        try:
            self.docker.api.remove_container(cid, force=True)
        except docker.errors.NotFound:
            pass

    async def _logs(self, request: kmock.Request) -> Any:
        cid = self.containers.get((request.namespace or "default", request.name or ""))
        if cid is None:
            return kmock.Response(
                status=400, payload={"kind": "Status", "code": 400, "message": "container is not running"}
            )
        follow = str(request.params.get("follow", "false")).lower() == "true"
        return self._stream(cid, follow)

    async def _stream(self, cid: str, follow: bool) -> AsyncIterator[bytes]:
        """The container's output as it comes (a blocking docker-py stream, bridged from a thread)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()

        def pump() -> None:
            try:
                for chunk in self.docker.api.logs(cid, stream=True, follow=follow, stdout=True, stderr=True):
                    loop.call_soon_threadsafe(queue.put_nowait, chunk)
            except docker.errors.NotFound:
                pass
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        threading.Thread(target=pump, daemon=True).start()
        yield b""
        while (chunk := await queue.get()) is not None:
            yield chunk
