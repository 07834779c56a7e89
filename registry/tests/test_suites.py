"""The pytest classes themselves: used as a plugin uses them, and their --tiercel-report output."""

import json
import subprocess
import sys

import pytest
from components import Echo, NoDocstring

from tiercel.core.storage import Local
from tiercel_registry import StorageConformance, TaskConformance, conformance_suite


class TestEcho(TaskConformance):
    component = Echo

    @pytest.fixture
    def long_run(self):  # a knob given as a fixture
        return {"message": "hello", "seconds": 3600}


class TestLocal(StorageConformance):
    component = Local
    large_file_size = 8 << 20

    @pytest.fixture
    def properties(self, tmp_path):
        return {"basePath": str(tmp_path)}


def test_conformance_suite_makes_one_class_per_component(dists):
    classes = conformance_suite("tiercel-good", {"good.Hi": {"long_run": {"who": "x"}, "example_inputs": {}}})
    assert list(classes) == ["Test_good_Hi"]
    suite = classes["Test_good_Hi"]
    assert issubclass(suite, TaskConformance) and suite.component.type == "good.Hi"
    assert suite.long_run == {"who": "x"}


def test_report_option_writes_each_outcome(tmp_path):
    (tmp_path / "test_mod.py").write_text(
        "from tiercel_registry import TaskConformance\n"
        "from components import Echo, NoDocstring\n\n"
        "class TestEcho(TaskConformance):\n    component = Echo\n\n"
        "class TestNoDocstring(TaskConformance):\n    component = NoDocstring\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    report = tmp_path / "report.json"
    fixtures = str(__import__("components").__file__).rsplit("/", 1)[0]
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--tiercel-report={report}",
                    "test_mod.py"], cwd=tmp_path, env={"PYTHONPATH": fixtures, "PATH": "/usr/bin:/bin"},
                   capture_output=True, text=True)
    rows = json.loads(report.read_text())
    assert [(r["type"], r["check"]) for r in rows] == sorted((r["type"], r["check"]) for r in rows)
    status = {(r["type"], r["check"]): (r["status"], r["message"]) for r in rows}
    assert status[(Echo.type, "examples_run")] == ("passed", "")
    assert status[(Echo.type, "timeout")][0] == "skipped" and "declare `long_run`" in status[(Echo.type, "timeout")][1]
    assert status[(NoDocstring.type, "documented")][0] == "failed"
    assert "has no docstring" in status[(NoDocstring.type, "documented")][1]
