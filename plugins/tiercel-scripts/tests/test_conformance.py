"""The registry's conformance suite for the script tasks (run by `tiercel registry grade tiercel-scripts`)."""

import shutil

import pytest
from tiercel_scripts.tasks import Node, Python, Shell

from tiercel_registry import TaskConformance


class TestShell(TaskConformance):
    component = Shell
    long_run = {"commands": ["sleep 3600"]}


class TestPython(TaskConformance):
    component = Python
    long_run = {"script": "import time\ntime.sleep(3600)\n"}


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (apt-get install nodejs)")
class TestNode(TaskConformance):
    component = Node
    long_run = {"script": "setTimeout(() => {}, 3600000);\n"}

    @pytest.fixture
    def example_inputs(self):
        return {}  # node is here: run the examples marked run=False too
