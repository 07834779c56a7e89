"""The registry's conformance suite for ssh.SSH, against a private OpenSSH sshd on loopback."""

from __future__ import annotations

import pytest
from tiercel_ssh.runner import SSH

from tiercel_registry import RunnerConformance


class TestSSH(RunnerConformance):
    component = SSH

    @pytest.fixture
    def properties(self, ssh_server):
        return ssh_server.properties(killGracePeriod="PT0.5S")
