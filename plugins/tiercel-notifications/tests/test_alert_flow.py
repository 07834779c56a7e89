"""The documented flows run: the alert-flow pattern of docs/user/notifications.md on a real server,
and the README's example flow."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tiercel.testing import TiercelServer, run_flow, task_run, wait_triggered

ROOT = Path(__file__).resolve().parents[3]


def yaml_blocks(path: Path) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", path.read_text(), re.S)


@pytest.mark.slow
def test_failed_execution_in_the_namespace_sends_an_alert(receiver, tmp_path):
    alert, broken, _ = yaml_blocks(ROOT / "docs/user/notifications.md")
    server = TiercelServer(tmp_path / "home", env={"TIERCEL_SECRET_SLACK_WEBHOOK": f"{receiver.url}/services/T0/B0/x"})
    server.start()
    try:
        server.deploy(alert)
        server.deploy(broken)
        with server.client() as api:
            failed = api.post("/api/v1/executions/company.team/nightly_load", params={"wait": True}).json()
        assert failed["state"] == "FAILED"
        assert len(wait_triggered(server.home, "failure_alert", 1, timeout=30, server=server)) == 1
        deadline = time.monotonic() + 30
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.stop()
    [sent] = receiver.received
    assert sent["path"] == "/services/T0/B0/x" and sent["json"]["channel"] == "#data-alerts"
    assert sent["json"]["text"].splitlines() == [
        "*❌ company.team.nightly_load ended FAILED*",
        f"Execution: {failed['id']}",
        "Failed tasks: load",
        "nightly_load needs a look",
        f"Link: http://127.0.0.1:8080/api/v1/executions/{failed['id']}",
    ]


def test_readme_flow_posts_to_slack_and_mails_the_report(receiver, smtp, tmp_path, monkeypatch):
    monkeypatch.setenv("TIERCEL_SECRET_SLACK_WEBHOOK", f"{receiver.url}/services/T0/B0/x")
    [flow] = yaml_blocks(ROOT / "plugins/tiercel-notifications/README.md")
    ex = run_flow(flow, {"smtp_port": smtp["plain"].port}, home=tmp_path / "home")
    assert ex["state"] == "SUCCESS", ex
    assert receiver.received[0]["json"] == {"text": f"Daily report of company.team is ready ({ex['id']})"}
    [mail] = smtp["plain"].messages
    assert mail["rcpt"] == ["sales@example.com", "ceo@example.com", "archive@example.com"]
    [attachment] = list(mail["message"].iter_attachments())
    assert attachment.get_content() == "region,sales\nnorth,12\nsouth,30\n"
    assert task_run(ex, "mail")["outputs"] == {"recipients": 3}
