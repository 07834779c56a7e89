"""The test cluster: kmock's Kubernetes API emulator plus a kubelet running its pods on the local Docker engine."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from cluster import Cluster  # noqa: E402


@pytest.fixture(scope="session")
def cluster(docker_host: str) -> Iterator[Cluster]:
    test_cluster = Cluster(docker_host).start()
    try:
        yield test_cluster
    finally:
        test_cluster.stop()


@pytest.fixture
def k8s_properties(cluster: Cluster) -> dict[str, object]:
    """The runner's properties for the test cluster."""
    return {
        "config": {"masterUrl": cluster.url, "oauthToken": "test"},
        "image": "tiercel/busybox:test",
        "namespace": "default",
        "pullPolicy": "NEVER",
    }
