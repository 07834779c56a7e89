"""The executor alone, table-driven: (flow, events) -> (task-run states, effects), in milliseconds.

No process, no database, no worker: each case feeds events to ``Executor.apply`` and checks
which task runs are in which state and what the step asked for (jobs, timers, subflows,
cancellations). The clock is the test's.
"""

from __future__ import annotations

from typing import Any

import pytest

from tiercel.engine.executor import (
    Effects,
    Executor,
    FilesDone,
    Kill,
    Lost,
    Recover,
    Restart,
    Result,
    Resume,
    Start,
    SubflowEnded,
    Timer,
)
from tiercel.engine.executor.rules import MAX_LOST_ATTEMPTS
from tiercel.engine.variables import Variables
from tiercel.expr import Renderer
from tiercel.flow import load_flow
from tiercel.model import Execution, State, new_id


class Drive:
    """One execution driven by hand: start it, end attempts, fire timers, look at states."""

    def __init__(self, tasks: str, head: str = "") -> None:
        self.flow = load_flow(f"id: t\nnamespace: tests.executor\n{head}tasks:\n{tasks}")
        self.now = 1000.0
        self.executor = Executor(Variables(Renderer(), lambda ex: {}), clock=lambda: self.now)
        self.ex = Execution(id=new_id(), namespace="tests.executor", flow_id="t", flow_hash="h", state=State.CREATED,
                            created_at=self.now)
        self.effects: list[Effects] = []

    def apply(self, *events: Any) -> Effects:
        effects = self.executor.apply(self.flow, self.ex, list(events))
        self.ex.changed.clear()
        self.effects.append(effects)
        return effects

    def run(self, task_id: str, value: str | None = None) -> Any:
        found = [tr for tr in self.ex.task_runs.values() if tr.task_id == task_id and (value is None or tr.value == value)]
        assert len(found) == 1, f"{len(found)} runs of {task_id} ({value})"
        return found[0]

    def end(self, task_id: str, state: State = State.SUCCESS, value: str | None = None,
            outputs: dict[str, Any] | None = None) -> Effects:
        tr = self.run(task_id, value)
        return self.apply(Result(tr.id, tr.attempt, state, outputs, "boom" if state == State.FAILED else None,
                                 self.now, self.now))

    def states(self) -> dict[str, str]:
        return {(tr.task_id if tr.value is None else f"{tr.task_id}[{tr.value}]"): tr.state
                for tr in sorted(self.ex.task_runs.values(), key=lambda t: t.seq)}

    @staticmethod
    def jobs(effects: Effects) -> list[str]:
        return [j.task_run.task_id if j.task_run.value is None else f"{j.task_run.task_id}[{j.task_run.value}]"
                for j in effects.jobs]


LOG = "    type: core.Log\n    message: x\n"


def test_sequence_runs_one_after_another_then_ends():
    d = Drive("  - id: a\n" + LOG + "  - id: b\n" + LOG)
    assert d.jobs(d.apply(Start())) == ["a"]
    assert d.states() == {"a": "RUNNING"} and d.ex.state == "RUNNING"
    assert d.jobs(d.end("a")) == ["b"]
    last = d.end("b")
    assert last.ended and d.ex.state == "SUCCESS" and d.ex.ended_at == d.now


def test_a_failure_stops_the_sequence_runs_errors_then_finally():
    d = Drive("  - id: a\n" + LOG + "  - id: b\n" + LOG, head="")
    d.flow = load_flow("id: t\nnamespace: tests.executor\ntasks:\n  - id: a\n" + LOG + "  - id: b\n" + LOG +
                       "errors:\n  - id: e\n" + LOG + "finally:\n  - id: f\n" + LOG)
    d.apply(Start())
    assert d.jobs(d.end("a", State.FAILED)) == ["e"]
    assert d.jobs(d.end("e")) == ["f"]
    d.end("f")
    assert d.states() == {"a": "FAILED", "e": "SUCCESS", "f": "SUCCESS"}
    assert d.ex.state == "FAILED" and d.ex.error == "task `a` failed: boom"


@pytest.mark.parametrize("flags, expected", [
    ("    allowFailure: true\n", "WARNING"),
    ("    allowFailure: true\n    allowWarning: true\n", "SUCCESS"),
    ("", "FAILED"),
])
def test_allow_failure_and_warning(flags, expected):
    d = Drive("  - id: a\n" + LOG + flags + "  - id: b\n" + LOG)
    d.apply(Start())
    d.end("a", State.FAILED)
    assert d.run("a").state == expected
    assert ("b" in d.states()) == (expected != "FAILED")


def test_retry_waits_on_a_timer_then_dispatches_a_new_attempt():
    d = Drive("  - id: a\n" + LOG + "    retry: {type: constant, interval: PT5S, maxAttempt: 3, warningOnRetry: true}\n")
    d.apply(Start())
    failed = d.end("a", State.FAILED)
    tr = d.run("a")
    assert tr.state == "RETRYING" and failed.jobs == []
    assert [(t.name, t.when) for t in failed.timers] == [("retry", 1005.0)]
    d.now = 1005.0
    again = d.apply(Timer(tr.id, "retry"))
    assert d.jobs(again) == ["a"] and tr.attempt == 2
    d.end("a")
    assert tr.state == "WARNING"  # a success that needed retries, with warningOnRetry
    assert [a.state for a in tr.attempts] == ["FAILED", "SUCCESS"]


def test_retries_stop_at_max_attempt():
    d = Drive("  - id: a\n" + LOG + "    retry: {type: constant, interval: PT1S, maxAttempt: 2}\n")
    d.apply(Start())
    d.end("a", State.FAILED)
    d.apply(Timer(d.run("a").id, "retry"))
    d.end("a", State.FAILED)
    assert d.run("a").state == "FAILED" and d.ex.state == "FAILED"


def test_a_stale_or_duplicate_result_changes_nothing():
    d = Drive("  - id: a\n" + LOG + "  - id: b\n" + LOG)
    d.apply(Start())
    tr = d.run("a")
    d.end("a")
    again = d.apply(Result(tr.id, tr.attempt, State.FAILED, None, "late", d.now, d.now))
    old = d.apply(Result(tr.id, tr.attempt - 1, State.FAILED, None, "older", d.now, d.now))
    assert tr.state == "SUCCESS" and again.jobs == [] and old.jobs == []


def test_a_lost_attempt_runs_again_until_the_cap():
    d = Drive("  - id: a\n" + LOG)
    d.apply(Start())
    tr = d.run("a")
    for n in range(1, MAX_LOST_ATTEMPTS):
        assert d.jobs(d.apply(Lost(tr.id, tr.attempt))) == ["a"]
        assert tr.attempt == n + 1
    d.apply(Lost(tr.id, tr.attempt))
    assert tr.state == "FAILED" and "died 3 times in a row" in tr.error
    assert [a.state for a in tr.attempts] == ["LOST"] * MAX_LOST_ATTEMPTS


def test_kill_cancels_running_attempts_and_starts_nothing_new():
    d = Drive("  - id: p\n    type: core.Parallel\n    tasks:\n      - id: a\n" + LOG.replace("    ", "        ")
              + "      - id: b\n" + LOG.replace("    ", "        ") + "  - id: after\n" + LOG)
    d.apply(Start())
    effects = d.apply(Kill())
    assert sorted(effects.cancel) == sorted([d.run("a").id, d.run("b").id]) and d.ex.state == "KILLING"
    d.end("a", State.KILLED)
    d.end("b", State.KILLED)
    assert d.ex.state == "KILLED" and "after" not in d.states()


def test_parallel_respects_its_limit():
    tasks = "".join(f"      - id: t{i}\n" + LOG.replace("    ", "        ") for i in range(4))
    d = Drive("  - id: p\n    type: core.Parallel\n    concurrent: 2\n    tasks:\n" + tasks)
    assert d.jobs(d.apply(Start())) == ["t0", "t1"]
    assert d.jobs(d.end("t1")) == ["t2"]
    assert d.jobs(d.end("t0")) == ["t3"]
    d.end("t2", State.FAILED)  # a Parallel does not stop on a failure: the others finish
    d.end("t3")
    assert d.run("p").state == "FAILED"


def test_foreach_runs_each_value_with_its_value_and_limit():
    d = Drive("  - id: each\n    type: core.ForEach\n    values: [x, y, z]\n    concurrencyLimit: 2\n    tasks:\n"
              "      - id: w\n" + LOG.replace("    ", "        "))
    assert d.jobs(d.apply(Start())) == ["w[x]", "w[y]"]
    assert d.jobs(d.end("w", value="y", outputs={"v": 1})) == ["w[z]"]
    d.end("w", value="x")
    d.end("w", value="z")
    assert d.run("each").outputs == {"count": 3} and d.ex.state == "SUCCESS"
    assert d.ex.outputs_ctx["w"]["y"] == {"v": 1}  # outputs read per value


@pytest.mark.parametrize("condition, branch", [("true", "on_true"), ("0", "on_false")])
def test_if_runs_one_branch(condition, branch):
    d = Drive(f"  - id: c\n    type: core.If\n    condition: '{condition}'\n    then:\n      - id: on_true\n"
              + LOG.replace("    ", "        ") + "    else:\n      - id: on_false\n" + LOG.replace("    ", "        "))
    assert d.jobs(d.apply(Start())) == [branch]


def test_switch_default_branch():
    d = Drive("  - id: s\n    type: core.Switch\n    value: other\n    cases:\n      a:\n        - id: ca\n"
              + LOG.replace("    ", "          ") + "    defaults:\n      - id: dflt\n" + LOG.replace("    ", "        "))
    assert d.jobs(d.apply(Start())) == ["dflt"]
    assert d.run("s").outputs == {"value": "other", "defaults": True}


def test_dag_starts_nodes_whose_dependencies_succeeded():
    node = LOG.replace("    ", "          ")
    d = Drive("  - id: g\n    type: core.Dag\n    tasks:\n"
              "      - task:\n          id: a\n" + node +
              "      - task:\n          id: b\n" + node + "        dependsOn: [a]\n"
              "      - task:\n          id: c\n" + node + "        dependsOn: [a]\n"
              "      - task:\n          id: d\n" + node + "        dependsOn: [b, c]\n")
    assert d.jobs(d.apply(Start())) == ["a"]
    assert sorted(d.jobs(d.end("a"))) == ["b", "c"]
    assert d.jobs(d.end("b")) == []
    assert d.jobs(d.end("c")) == ["d"]


def test_run_if_false_skips_the_task():
    d = Drive("  - id: a\n" + LOG + "    runIf: \"{{ 1 > 2 }}\"\n  - id: b\n" + LOG)
    assert d.jobs(d.apply(Start())) == ["b"]
    assert d.run("a").state == "SKIPPED"


def test_pause_holds_the_execution_until_resumed_with_checked_inputs():
    d = Drive("  - id: gate\n    type: core.Pause\n    onResume:\n      - {id: ok, type: BOOLEAN}\n  - id: after\n" + LOG)
    d.apply(Start())
    gate = d.run("gate")
    assert gate.state == "PAUSED" and d.ex.state == "PAUSED"
    refused = d.apply(Resume(None, {"ok": "not a boolean"}))
    assert gate.state == "PAUSED" and refused.logs and "resume refused" in refused.logs[0][2]
    assert d.jobs(d.apply(Resume(None, {"ok": True}))) == ["after"]
    assert gate.state == "SUCCESS" and gate.outputs == {"onResume": {"ok": True}} and d.ex.state == "RUNNING"


def test_pause_delay_resumes_by_itself():
    d = Drive("  - id: gate\n    type: core.Pause\n    delay: PT10S\n  - id: after\n" + LOG)
    effects = d.apply(Start())
    assert [(t.name, t.when) for t in effects.timers] == [("delay", 1010.0)]
    d.now = 1010
    assert d.jobs(d.apply(Timer(d.run("gate").id, "delay"))) == ["after"]


def test_waitfor_repeats_until_the_condition_holds():
    d = Drive("  - id: w\n    type: core.WaitFor\n    condition: \"{{ outputs.poll.value == 'ready' }}\"\n"
              "    checkFrequency: {interval: PT2S}\n    tasks:\n      - id: poll\n        type: core.Return\n"
              "        format: x\n")
    d.apply(Start())
    waiting = d.end("poll", outputs={"value": "not yet"})
    assert [t.name for t in waiting.timers] == ["next"] and d.run("w").state == "RUNNING"
    d.now += 2
    next_round = d.apply(Timer(d.run("w").id, "next"))
    assert len(next_round.jobs) == 1
    d.apply(Result(next_round.jobs[0].task_run.id, 1, State.SUCCESS, {"value": "ready"}, None, d.now, d.now))
    assert d.run("w").state == "SUCCESS" and d.run("w").outputs == {"iterationCount": 2}


def test_subflow_is_asked_for_then_reads_the_child_end():
    d = Drive("  - id: child\n    type: core.Subflow\n    namespace: tests.other\n    flowId: kid\n"
              "    inputs: {n: \"{{ 6 * 7 }}\"}\n")
    effects = d.apply(Start())
    (start,) = effects.subflows
    assert (start.request.namespace, start.request.flow_id, start.request.inputs) == ("tests.other", "kid", {"n": 42})
    tr = d.run("child")
    d.apply(SubflowEnded(tr.id, None, start.execution_id, State.SUCCESS, {"answer": 1}))
    assert tr.state == "SUCCESS"
    assert tr.outputs == {"executionId": start.execution_id, "state": "SUCCESS", "outputs": {"answer": 1}}


def test_a_kill_reaches_a_running_subflow():
    d = Drive("  - id: child\n    type: core.Subflow\n    namespace: tests.other\n    flowId: kid\n")
    (start,) = d.apply(Start()).subflows
    assert d.apply(Kill()).kill_children == [start.execution_id]


def test_working_directory_asks_for_file_work_in_order():
    d = Drive("  - id: wd\n    type: core.WorkingDirectory\n    inputFiles: {a.txt: hello}\n    outputFiles: ['*.txt']\n"
              "    tasks:\n      - id: inside\n" + LOG.replace("    ", "        "))
    effects = d.apply(Start())
    wd = d.run("wd")
    assert [(f.kind, f.params) for f in effects.files] == [("write", {"files": {"a.txt": "hello"}})] and not effects.jobs
    started = d.apply(FilesDone(wd.id, "write", {}))
    assert d.jobs(started) == ["inside"] and started.jobs[0].workdir == wd.id
    collect = d.end("inside")
    assert [(f.kind, f.params) for f in collect.files] == [("collect", {"globs": ["*.txt"]})]
    d.apply(FilesDone(wd.id, "collect", {"a.txt": "tiercel://x"}))
    assert wd.state == "SUCCESS" and wd.outputs == {"outputFiles": {"a.txt": "tiercel://x"}}


def test_restart_reruns_only_what_failed_with_a_new_attempt():
    d = Drive("  - id: a\n" + LOG + "  - id: b\n" + LOG)
    d.apply(Start())
    d.end("a")
    d.end("b", State.FAILED)
    assert d.ex.state == "FAILED"
    again = d.apply(Restart())
    assert d.jobs(again) == ["b"] and d.run("b").attempt == 2 and d.run("a").attempt == 1
    d.end("b")
    assert d.ex.state == "SUCCESS"


def test_recover_reissues_lost_attempts_and_timers():
    d = Drive("  - id: a\n" + LOG + "  - id: b\n" + LOG + "    retry: {type: constant, interval: PT30S, maxAttempt: 2}\n")
    d.apply(Start())
    d.end("a")
    d.end("b", State.FAILED)  # b waits 30 s to retry
    # a process takes the execution over: a's attempt ended, b's timer is armed again
    effects = d.apply(Recover())
    assert [(t.name, t.when) for t in effects.timers] == [("retry", 1030.0)] and effects.jobs == []
    d2 = Drive("  - id: a\n" + LOG)
    d2.apply(Start())
    recovered = d2.apply(Recover())
    assert d2.jobs(recovered) == ["a"] and [a.state for a in d2.run("a").attempts] == ["LOST", "RUNNING"]


def test_a_flowable_without_resolve_fails_clearly():
    from tiercel import FlowableTask
    from tiercel.plugins import get_registry, set_registry

    class Nothing(FlowableTask):
        """Declares nothing."""

        type = "tests.Nothing"
        tasks: list = []

    set_registry(get_registry().with_component(Nothing))
    try:
        d = Drive("  - id: n\n    type: tests.Nothing\n")
        d.apply(Start())
    finally:
        set_registry(None)
    assert d.run("n").state == "FAILED" and "does not implement resolve(run)" in d.run("n").error
