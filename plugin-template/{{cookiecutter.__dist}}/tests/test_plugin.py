import asyncio
from types import SimpleNamespace

from tiercel.testing.harness import run_flow, task_run
from {{ cookiecutter.__package }}.tasks import FLOWS
from {{ cookiecutter.__package }}.triggers import NewFile


def test_greet_flow_runs():
    execution = run_flow(FLOWS / "greet.yaml")
    assert execution["state"] == "SUCCESS"
    assert task_run(execution, "hello")["outputs"] == {"greeting": "Hello, world!"}


def test_new_file_is_handed_out_until_acknowledged(tmp_path):
    trigger = NewFile(id="inbox", folder=str(tmp_path))
    ctx = SimpleNamespace(state={})  # poll() only uses the trigger's state
    assert asyncio.run(trigger.poll(ctx)) is None
    (tmp_path / "a.txt").write_text("hi")
    event = asyncio.run(trigger.poll(ctx))
    assert (event.key, event.variables["name"]) == ("a.txt", "a.txt")
    assert asyncio.run(trigger.poll(ctx)).key == "a.txt"  # not acknowledged yet: the same event again
    event.ack()
    assert asyncio.run(trigger.poll(ctx)) is None
