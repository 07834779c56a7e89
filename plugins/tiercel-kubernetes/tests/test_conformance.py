"""The registry's conformance suite for kubernetes.Kubernetes, against kmock's API server and a test
kubelet that runs the pods on the local Docker engine (see cluster.py)."""

from __future__ import annotations

import pytest
from tiercel_kubernetes.runner import Kubernetes

from tiercel_registry import RunnerConformance


class TestKubernetes(RunnerConformance):
    component = Kubernetes

    @pytest.fixture
    def properties(self, k8s_properties):
        return k8s_properties

    @pytest.fixture
    def alive(self, cluster):
        """A pid printed inside a pod is alive while any pod's container still runs."""
        return lambda pid: bool(cluster.running())
