"""The registry's conformance suite for the HTTP components, against the loopback test server."""

import socket

import pytest
from tiercel_http.components import Download, Request, Trigger

from tiercel_registry import TaskConformance, TriggerConformance

# A server that accepts connections (the kernel's backlog does) but never answers: a request
# to it waits for its read timeout, which is what the timeout and kill checks need.
SILENT = socket.socket()
SILENT.bind(("127.0.0.1", 0))
SILENT.listen(64)
HANGS = {"uri": f"http://127.0.0.1:{SILENT.getsockname()[1]}/hang", "options": {"readTimeout": "PT1H"}}


class TestRequest(TaskConformance):
    component = Request
    long_run = HANGS

    @pytest.fixture
    def example_inputs(self, server):
        return {"server": server.url}


class TestDownload(TaskConformance):
    component = Download
    long_run = HANGS

    @pytest.fixture
    def example_inputs(self, server):
        return {"server": server.url}


class TestTrigger(TriggerConformance):
    component = Trigger

    @pytest.fixture
    def properties(self, server):
        return {"uri": f"{server.url}/json"}
