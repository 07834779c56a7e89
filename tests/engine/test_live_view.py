"""The live view as a person sees it: `tiercel run` on a real terminal (tmux), read back with capture-pane;
and the same run in a pipe, one ordered line per event."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tiercel.testing.harness import tiercel

LOOP = """\
id: loop
namespace: demo.live
tasks:
  - {id: hello, type: core.Log, message: "starting the loop"}
  - id: both
    type: core.Parallel
    tasks:
      - id: each
        type: core.ForEach
        values: "{{ range(1, 101) | list }}"
        concurrencyLimit: 8
        tasks:
          - {id: work, type: core.Sleep, duration: PT0.5S}
      - id: bad
        type: core.ForEach
        values: [1, 2, 3]
        concurrencyLimit: 0
        tasks:
          - {id: check, type: core.Fail, runIf: "{{ taskrun.value != '3' }}", errorMessage: "bad item {{ taskrun.value }}"}
      - {id: talk, type: scripts.Shell, commands: ["echo line one", "echo line two", "sleep 30"]}
"""

GATE = """\
id: gate
namespace: demo.live
tasks:
  - {id: first, type: core.Log, message: "before the gate"}
  - {id: gate, type: core.Pause}
  - {id: nap, type: core.Sleep, duration: PT60S}
"""


class Terminal:
    """A tmux window of 110x40 running a shell; `screen()` is what a person sees."""

    def __init__(self, name: str, cwd: Path, env: dict[str, str]) -> None:
        self.name = name
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "110", "-y", "40", "-c", str(cwd),
                        f"env {exports} bash --norc --noprofile"], check=True)

    def type(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-J", "-t", self.name], capture_output=True, text=True,
                              check=True).stdout

    def wait_for(self, test: Callable[[str], object], timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if test(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"the terminal never showed what was expected; it shows:\n{text}")
            time.sleep(0.2)

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    if shutil.which("tmux") is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is missing (scripts/services/tmux.sh installs it)")
        pytest.skip("needs tmux (apt-get install tmux)")
    bindir = Path(sys.executable).parent
    env = {"PATH": f"{bindir}:{os.environ['PATH']}", "TIERCEL_HOME": str(tmp_path / "home"), "TERM": "xterm-256color",
           "PS1": "$ "}
    term = Terminal(f"tiercel-{uuid.uuid4().hex[:8]}", tmp_path, env)
    yield term
    term.close()


def test_the_live_view_on_a_terminal(terminal, tmp_path):
    (tmp_path / "loop.yaml").write_text(LOOP)
    terminal.type("tiercel run loop.yaml", "Enter")
    # the flow, execution id and start first; a loop's progress ticking; children nested under their parent
    screen = terminal.wait_for(lambda s: re.search(r"each RUNNING [\d.]+ m?s  \d+/100 ✔", s))
    execution_id = re.search(r"▶ demo\.live\.loop  execution (\w+)  started \d{4}-\d\d-\d\d", screen).group(1)
    assert re.search(r"^      ▶ work\[\d+\] RUNNING", screen, re.M), screen  # nested under `each`, under `both`
    first = int(re.search(r"(\d+)/100 ✔", screen).group(1))
    terminal.wait_for(lambda s: (m := re.search(r"(\d+)/100 ✔", s)) and int(m.group(1)) > first)
    # a failing loop: its progress counts failures; each failure printed once, its reason logged once
    screen = terminal.wait_for(lambda s: re.search(r"✘ bad FAILED [\d.]+ m?s  1/3 ✔ 2 ✘", s))
    assert screen.count("bad item 1") == 1 and screen.count("✘ check[1] FAILED") == 2, screen  # above, in the tree
    # a running task shows its last log lines under it, and its duration ticks
    screen = terminal.wait_for(lambda s: re.search(r"talk RUNNING [\d.]+ s\n\s+│ line one\n\s+│ line two", s))
    before = float(re.search(r"talk RUNNING ([\d.]+) s", screen).group(1))
    terminal.wait_for(lambda s: (m := re.search(r"talk RUNNING ([\d.]+) s", s)) and float(m.group(1)) >= before + 1)
    screen = terminal.wait_for(lambda s: re.search(r"both RUNNING .*  1/3 ✔ 1 ✘", s))
    assert "… " not in screen.split("each SUCCESS")[1].split("bad")[0]  # a loop that ended well folds away
    # Ctrl-C asks, with a countdown; a second Ctrl-C kills now
    terminal.type("C-c")
    screen = terminal.wait_for(lambda s: "killing in" in s)
    assert "k kill now" in screen and f"tiercel executions resume {execution_id}" in screen
    terminal.type("C-c")
    screen = terminal.wait_for(lambda s: f"execution {execution_id} KILLED" in s)
    assert "talk RUNNING" not in screen  # the live tree is gone; the summary stays


def test_paused_shows_the_resume_command_and_ctrl_c_can_detach(terminal, tmp_path):
    (tmp_path / "gate.yaml").write_text(GATE)
    terminal.type("tiercel run gate.yaml", "Enter")
    screen = terminal.wait_for(lambda s: "is paused at `gate`" in s and re.search(r"‖ gate PAUSED [\d.]+ m?s", s))
    execution_id = re.search(r"execution (\w+) is paused", screen).group(1)
    assert f"tiercel executions resume {execution_id}" in screen
    terminal.type("C-c")
    terminal.wait_for(lambda s: "killing in" in s)
    terminal.type("c")  # keep watching: the question goes, the execution stays
    terminal.wait_for(lambda s: "killing in" not in s and "gate PAUSED" in s)
    terminal.type("C-c")
    terminal.wait_for(lambda s: "killing in" in s)
    terminal.type("d")
    screen = terminal.wait_for(lambda s: f"left execution {execution_id} as it is" in s)
    home = tmp_path / "home"
    shown = tiercel("executions", "show", execution_id, "--json", home=home)
    assert '"state": "PAUSED"' in shown.stdout
    # resumed from the terminal, it picks up where it was (what ran before shows at once)
    terminal.type(f"tiercel executions resume {execution_id}", "Enter")
    screen = terminal.wait_for(lambda s: "nap RUNNING" in s)
    assert "✔ first SUCCESS" in screen
    terminal.type("C-c")
    terminal.wait_for(lambda s: "killing in" in s)
    terminal.type("k")
    terminal.wait_for(lambda s: f"execution {execution_id} KILLED" in s)


def test_in_a_pipe_one_ordered_line_per_event_and_each_failure_once(tmp_path):
    (tmp_path / "loop.yaml").write_text(LOOP.replace('"sleep 30"', '"sleep 0.1"').replace("101", "6"))
    proc = tiercel("run", str(tmp_path / "loop.yaml"), home=tmp_path / "home")
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("▶ demo.live.loop: execution ")
    live = lines[: lines.index("")]  # before the summary
    assert sum("bad item 1" in line for line in live) == 1, proc.stdout  # logged once, not repeated on its line
    first = next(i for i, line in enumerate(live) if line.startswith("✘ check[1] FAILED"))
    assert first < next(i for i, line in enumerate(live) if line.startswith("✘ bad FAILED"))  # a parent after its children
    assert not any(re.search(r"SKIPPED \d", line) for line in live), proc.stdout  # nothing ran: no duration
