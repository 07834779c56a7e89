"""The registry's conformance suite for the git tasks; their examples need a remote, given by the fixtures."""

import socket

import pytest
from tiercel_git.gitops import PushFlows, PushNamespaceFiles, SyncNamespaceFiles
from tiercel_git.tasks import Clone, Push, SyncFlows

from tiercel_registry import TaskConformance

# Accepts connections but never answers: a clone from it waits until it is cancelled.
SILENT = socket.socket()
SILENT.bind(("127.0.0.1", 0))
SILENT.listen(64)
HANGS = {"url": f"git://127.0.0.1:{SILENT.getsockname()[1]}/repo.git"}


class TestClone(TaskConformance):
    component = Clone
    long_run = HANGS

    @pytest.fixture
    def example_inputs(self, repos, tmp_path):
        return {"repository": f"file://{repos.make(tmp_path, 'example', {'a.txt': 'a'})}"}


class TestPush(TaskConformance):
    component = Push

    @pytest.fixture
    def example_inputs(self, repos, tmp_path, monkeypatch):
        monkeypatch.setenv("TIERCEL_SECRET_GIT_SSH_KEY", "unused for file://")
        return {"repository": f"file://{repos.make(tmp_path, 'example', {'a.txt': 'a'})}"}


class TestSyncFlows(TaskConformance):
    component = SyncFlows
    long_run = {**HANGS, "serverUrl": "http://127.0.0.1:9"}


SILENT_SERVER = {**HANGS, "serverUrl": f"http://127.0.0.1:{SILENT.getsockname()[1]}"}


class TestSyncNamespaceFiles(TaskConformance):
    component = SyncNamespaceFiles
    long_run = SILENT_SERVER


class TestPushNamespaceFiles(TaskConformance):
    component = PushNamespaceFiles
    long_run = SILENT_SERVER


class TestPushFlows(TaskConformance):
    component = PushFlows
    long_run = SILENT_SERVER
