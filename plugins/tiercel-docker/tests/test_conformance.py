"""The registry's conformance suite for docker.Docker, against a real Docker engine."""

from __future__ import annotations

import pytest
from tiercel_docker.runner import Docker

from tiercel_registry import RunnerConformance


class TestDocker(RunnerConformance):
    component = Docker

    @pytest.fixture
    def properties(self, docker_host):
        return {"host": docker_host, "image": "tiercel/busybox:test", "networkMode": "none"}

    @pytest.fixture
    def alive(self, docker_host):
        """A pid printed inside a container is alive while any container of ours still runs."""
        import docker

        client = docker.DockerClient(base_url=docker_host)

        def alive(pid: int) -> bool:
            return bool(client.containers.list(filters={"label": "tiercel.runner=docker.Docker"}))

        return alive
