"""Each check, tested on fixture components: the good ones pass everything, each broken one fails
exactly the check it breaks, with a message that says what to fix."""

import os
import re
import signal

import pytest
from components import (
    BadExample,
    Buffered,
    CancellableBlocking,
    CommitsInPoll,
    Echo,
    Escaping,
    ExitZero,
    ExtraAllowed,
    FailingExample,
    ForgetsOnNack,
    IgnoresCancel,
    Inbox,
    LeaksSecret,
    LeavesOrphans,
    Listener,
    NoDocstring,
    NoEnv,
    NoExamples,
    NoKey,
    NoOutputFiles,
    RefusesExpressions,
    Slurping,
    Stubborn,
    Undocumented,
    Unsorted,
    emit_realtime,
)

from tiercel.core.runner import Process
from tiercel.core.storage import Local
from tiercel_registry.checks import CheckFailed, CheckSkipped, Options, checks_for, run_check

slow = pytest.mark.slow


def options_for(cls, tmp_path):
    """The knobs a conformance class would give each fixture."""
    from tiercel.api import PollingTrigger, RealtimeTrigger, Storage, Task

    if cls in (Echo, IgnoresCancel, CancellableBlocking):  # the tasks whose run() lasts `seconds`
        return Options(long_run={"message": "hello", "seconds": 3600})
    if issubclass(cls, Task):
        return Options()
    if issubclass(cls, PollingTrigger):
        return Options(properties={"folder": str(tmp_path)}, emit=lambda: (tmp_path / "a.txt").write_text("a"))
    if issubclass(cls, RealtimeTrigger):
        return Options(properties={"folder": str(tmp_path)}, emit=emit_realtime)
    if issubclass(cls, Storage):
        return Options(properties={"basePath": str(tmp_path / "storage")}, large_file_size=24 << 20, max_memory=8 << 20)
    return Options()


def outcomes(cls, tmp_path):
    failed, skipped = {}, {}
    for check in checks_for(cls):
        try:
            run_check(check, cls, options_for(cls, tmp_path))
        except CheckFailed as exc:
            failed[check] = str(exc)
        except CheckSkipped as exc:
            skipped[check] = str(exc)
    return failed, skipped


@pytest.mark.parametrize("cls", [Echo, Inbox, Process, Local], ids=lambda c: c.type)
def test_good_components_pass_every_check(cls, tmp_path):
    failed, skipped = outcomes(cls, tmp_path)
    assert failed == {}
    assert set(skipped) <= {"realtime_stops", "examples_validate"}  # Process's example needs tiercel-scripts


@slow
@pytest.mark.parametrize("cls", [CancellableBlocking, Listener], ids=lambda c: c.type)
def test_good_blocking_task_and_listener_pass(cls, tmp_path):
    failed, _ = outcomes(cls, tmp_path)
    assert failed == {}


BROKEN = [
    (NoDocstring, {"documented"}, "has no docstring"),
    (Undocumented, {"documented"}, "property `volume` has no description; add Field(description="),
    (NoExamples, {"examples_validate"}, "has no examples: add `examples = [Example("),
    (BadExample, {"examples_validate"}, "unknown property `mesage`"),
    (ExtraAllowed, {"unknown_property"}, 'keep `extra="forbid"`'),
    (RefusesExpressions, {"expressions"}, "refuses expressions at deploy time"),
    (LeaksSecret, {"secrets"}, "the process log (a logger other than ctx.logger)"),
    (FailingExample, {"examples_run"}, "ended FAILED: task `probe`: the fixture always fails"),
    (NoKey, {"event_key"}, "an event has no deduplication key"),
    (CommitsInPoll, {"commit_after_create"}, "Commit the source position in event.ack"),
    (ExitZero, {"exit_code"}, "reported exit codes [0, 0]"),
    (NoEnv, {"env"}, "env TIERCEL_PROBE did not reach the command"),
    (NoOutputFiles, {"files"}, "output files ['out.txt', 'res/copy.bin'] did not come back"),
    (Escaping, {"escape_refused"}, "put('../conformance-escape.txt') was accepted"),
    (Slurping, {"large_file"}, "MiB of memory (limit 8 MiB); copy in chunks"),
    (Unsorted, {"roundtrip"}, "list('conformance/roundtrip') gave"),
]
SLOW_BROKEN = [
    (IgnoresCancel, {"timeout", "kill"}, "blocking code in a plain run() must poll ctx.cancelled"),
    (Stubborn, {"realtime_stops"}, "listen() did not stop within 5 s of being cancelled"),
    (ForgetsOnNack, {"commit_after_create"}, "listen() gave no event instead of event"),
    (Buffered, {"log_streaming"}, "did not reach job.on_stdout while the command ran"),
    (LeavesOrphans, {"kill"}, "outlived the kill: kill the commands' whole process group"),
]


def _check_broken(cls, expected, fragment, tmp_path):
    failed, _ = outcomes(cls, tmp_path)
    for message in failed.values():  # an orphan the check found: do not leave it behind
        for pid in re.findall(r"pid (\d+)", message):
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert set(failed) == expected, failed
    for check in expected:
        assert fragment in failed[check]


@pytest.mark.parametrize("cls,expected,fragment", BROKEN, ids=lambda v: v.type if isinstance(v, type) else "")
def test_broken_component_fails_exactly_its_check(cls, expected, fragment, tmp_path):
    _check_broken(cls, expected, fragment, tmp_path)


@slow
@pytest.mark.parametrize("cls,expected,fragment", SLOW_BROKEN, ids=lambda v: v.type if isinstance(v, type) else "")
def test_broken_cancellation_fails_exactly_its_checks(cls, expected, fragment, tmp_path):
    _check_broken(cls, expected, fragment, tmp_path)


def test_missing_knobs_skip_with_the_knob_named(tmp_path):
    with pytest.raises(CheckSkipped, match="declare `long_run`"):
        run_check("timeout", Echo)
    with pytest.raises(CheckSkipped, match="`emit` fixture"):
        run_check("event_key", Inbox, Options(properties={"folder": str(tmp_path)}))
    with pytest.raises(CheckSkipped, match="`properties` fixture"):
        run_check("roundtrip", Local)


def test_kernel_driven_triggers_skip_source_checks():
    from tiercel.core.triggers import Schedule

    with pytest.raises(CheckSkipped, match="driven by the kernel"):
        run_check("dedupe", Schedule)
