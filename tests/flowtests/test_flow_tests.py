"""`tiercel test` and the pytest collector on flow test files: the guide's example as written,
failures with expected/got and file:line, JUnit XML, and broken test files."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tiercel.testing import tiercel

GUIDE = (Path(__file__).parents[2] / "docs" / "user" / "flow-tests.md").read_text()


@pytest.fixture
def flows(tmp_path):
    """The guide's flow and test file, written where the guide puts them."""
    folder = tmp_path / "flows"
    folder.mkdir()
    flow, tests = re.findall(r"```yaml\n(.*?)```", GUIDE, re.S)[:2]
    (folder / "orders.yaml").write_text(flow)
    (folder / "orders.test.yaml").write_text(tests)
    return folder


def test_the_guide_example_passes_and_writes_junit(flows, tmp_path):
    proc = tiercel("test", str(flows), "--junit-xml", str(tmp_path / "report.xml"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"{flows / 'orders.test.yaml'} ..."
    assert re.fullmatch(r"=+ 3 passed in \d+\.\d\ds =+", lines[-1])
    suite = ET.parse(tmp_path / "report.xml").getroot().find("testsuite")
    assert suite.get("tests") == "3" and suite.get("failures") == "0"
    assert [c.get("name") for c in suite] == [
        "reports_the_orders",
        "fails_when_there_are_none",
        "an_api_failure_fails_the_flow",
    ]


def test_a_failing_case_shows_expected_and_got_with_file_and_line(flows, tmp_path):
    test_file = flows / "orders.test.yaml"
    text = test_file.read_text()
    assert "outputs: {body: {count: 12}}" in text
    test_file.write_text(text.replace("outputs: {body: {count: 12}}", "outputs: {body: {count: 11}}"))
    proc = tiercel("test", str(flows), "--junit-xml", str(tmp_path / "report.xml"))
    assert proc.returncode == 1
    assert f"{test_file} F..\n" in proc.stdout
    assert (
        f"{test_file}:12: {{{{ outputs.report.value }}}} equalTo\n"
        f"  expected: '12 orders on 2024-05-01'\n  got:      '11 orders on 2024-05-01'"
    ) in proc.stdout
    assert re.search(r"=+ 1 failed, 2 passed in ", proc.stdout)
    failure = ET.parse(tmp_path / "report.xml").getroot().find("testsuite/testcase/failure")
    assert failure is not None and "got:      '11 orders" in failure.text
    shown = re.search(r"```\n(_____ .*?)```", GUIDE, re.S).group(1)  # the guide shows this very failure
    assert shown.replace("flows/", f"{flows}/").replace("_____ ", "", 1) in proc.stdout.replace("_____ ", "", 1)


def test_pytest_collects_the_same_files(flows):
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(flows)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=flows,
    )
    assert proc.returncode == 0, proc.stdout
    assert "3 passed" in proc.stdout


@pytest.mark.parametrize(
    "broken, message",
    [
        (
            "flow: orders.yaml\ntestCases:\n  - id: a\n    assertions:\n      - {value: x, equalTo: x}\n    fixtures:\n"
            "      tasks: [{id: nope}]\n",
            "test case `a`: fixture task `nope` is not a task of flow company.sales.orders",
        ),
        (
            "flow: orders.yaml\ntestCases:\n  - id: a\n    assertions:\n      - {value: x}\n",
            "test case `a`, assertion 1: give an operator",
        ),
        (
            "flow: orders.yaml\ntestCases:\n  - id: a\n    asserts: []\n",
            ":4: `testCases.0.asserts`: Extra inputs are not permitted",
        ),
        (
            "flow: missing.yaml\ntestCases:\n  - id: a\n    assertions: [{value: x, equalTo: x}]\n",
            "flow file missing.yaml not found",
        ),
    ],
)
def test_a_broken_test_file_is_an_error_naming_it(flows, broken, message):
    (flows / "orders.test.yaml").write_text(broken)
    proc = tiercel("test", str(flows / "orders.test.yaml"))
    assert proc.returncode == 1 and message in proc.stdout, proc.stdout


def test_trigger_fixtures_and_numeric_assertions(tmp_path):
    from tiercel.flowtest import load_test_file, run_case

    (tmp_path / "hook.yaml").write_text("""id: hook
namespace: company.team
tasks:
  - id: size
    type: core.Return
    format: "{{ trigger.body['items'] | length }}"
""")
    (tmp_path / "hook.test.yaml").write_text("""namespace: company.team
flowId: hook
testCases:
  - id: counts_items
    fixtures:
      trigger: {body: {items: [1, 2, 3]}}
    assertions:
      - {value: "{{ outputs.size.value }}", greaterThan: 2}
      - {value: "{{ outputs.size.value }}", lessThanOrEqualTo: 3}
      - {value: "{{ trigger.body['items'] }}", contains: 2}
      - {value: "{{ tasks.size.state }}", notIn: [FAILED, WARNING]}
  - id: not_yet
    disabled: true
    assertions: [{value: x, equalTo: y}]
""")
    loaded = load_test_file(tmp_path / "hook.test.yaml")
    first, second = run_case(loaded, 0), run_case(loaded, 1)
    assert (first.outcome, first.failures) == ("passed", [])
    assert second.outcome == "skipped"
