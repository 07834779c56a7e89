"""The web UI with authentication on (`tiercel server --auth`): a login page first, then each page
shows only what the user's role on a namespace allows (the server refuses the rest anyway).

Users: `vic` viewer on `company`, `rae` runner on `company`, `eddie` editor on `company.team`;
a flow in `other.ns` none of them may see.
"""

from __future__ import annotations

import re
import subprocess
import sys

import httpx
import pytest
from playwright.sync_api import expect

from tiercel.testing.harness import TiercelServer

FAST = {"TIERCEL_PASSWORD_HASH": "cheapest"}
PASSWORD = "a long passphrase"
APP = """\
id: app
namespace: company.team
# kept by the editor
inputs:
  - {id: who, type: STRING, defaults: world}
triggers:
  - {id: yearly, type: core.Schedule, cron: "0 0 1 1 *"}
tasks:
  - {id: hello, type: core.Log, message: "hi {{ inputs.who }}"}
"""
SECRET = "id: hidden\nnamespace: other.ns\ntasks:\n  - {id: x, type: core.Log, message: x}\n"


def _cli(home, *args: str, stdin: str | None = None) -> str:
    import os

    out = subprocess.run([sys.executable, "-m", "tiercel.cli.main", *args, "--home", str(home)], input=stdin,
                         capture_output=True, text=True, timeout=60, env={**os.environ, **FAST})
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """This module's server: authentication on, three users, two flows and one finished execution."""
    home = tmp_path_factory.mktemp("ui-auth") / "home"
    for name, role, namespace in (("vic", "viewer", "company"), ("rae", "runner", "company"),
                                  ("eddie", "editor", "company.team")):
        _cli(home, "users", "add", name, "--role", role, "--namespace", namespace, "--password-stdin",
             stdin=PASSWORD + "\n")
    token = _cli(home, "tokens", "create", "--role", "admin", "--name", "tests").split()[-1]
    proc = TiercelServer(home, env=FAST, args=["--auth"]).start()
    admin = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=proc.url, timeout=30, headers=admin) as client:
        for source in (APP, SECRET):
            r = client.post("/api/v1/flows", content=source, headers={"Content-Type": "application/x-yaml"})
            assert r.status_code == 200, r.text
        r = client.post("/api/v1/executions/company.team/app", params={"wait": "true"}, json={})
        assert r.json()["state"] == "SUCCESS", r.text
        proc.execution_id = r.json()["id"]
    yield proc
    proc.stop()


def login(page, server, user: str, path: str = "/ui/flows") -> None:
    page.goto(f"{server.url}{path}")
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    form = page.get_by_role("form", name="Log in to Tiercel")
    form.get_by_label("User name").fill(user)
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{server.url}{path}")
    expect(page.locator("header .user")).to_contain_text(user)


@pytest.mark.refused(401, "/api/v1/auth/login")
def test_the_login_page_comes_first_and_leads_back_to_the_deep_link(ui, server, shot):
    deep = f"/ui/executions/{server.execution_id}"
    ui.goto(f"{server.url}{deep}")
    expect(ui).to_have_url(re.compile(r"/ui/login\?next="))
    form = ui.get_by_role("form", name="Log in to Tiercel")
    form.get_by_label("User name").fill("vic")
    form.get_by_label("Password").fill("not it")
    form.get_by_role("button", name="Log in").click()
    expect(form.get_by_role("alert")).to_have_text("Wrong user name or password.")
    shot(ui, "login")
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Log in").click()
    expect(ui).to_have_url(f"{server.url}{deep}")
    expect(ui.get_by_test_id("execution-state")).to_have_text("SUCCESS")
    ui.reload()  # the session is a cookie: a reload stays logged in
    expect(ui.get_by_test_id("execution-state")).to_have_text("SUCCESS")
    ui.get_by_role("button", name="Log out").click()
    expect(ui).to_have_url(re.compile(r"/ui/login"))
    ui.goto(f"{server.url}/ui/flows")
    expect(ui).to_have_url(re.compile(r"/ui/login\?next="))


def test_a_viewer_reads_everything_of_its_namespaces_and_changes_nothing(ui, server, shot):
    login(ui, server, "vic")
    rows = ui.locator("[data-flow]")
    expect(rows).to_have_count(1)  # other.ns is not theirs: not even listed
    expect(ui.locator("[data-flow='company.team.app']")).to_be_visible()
    expect(ui.get_by_role("link", name="New flow")).to_have_count(0)
    expect(rows.get_by_role("link", name="Execute")).to_have_count(0)

    rows.get_by_role("link", name="app").click()
    expect(ui.get_by_test_id("read-only")).to_have_text("Read-only: your role on company.team is viewer")
    expect(ui.get_by_test_id("problem-count")).to_have_text("0 problems", timeout=30_000)  # the editor has loaded
    for name in ("Save", "Delete", "Execute"):
        expect(ui.get_by_role("button", name=name, exact=True)).to_have_count(0)
    before = "\n".join(ui.locator(".cm-content .cm-line").all_inner_texts())
    ui.locator(".cm-content").click()
    ui.keyboard.type("xyz")
    ui.keyboard.press("Control+s")
    assert "\n".join(ui.locator(".cm-content .cm-line").all_inner_texts()) == before
    ui.get_by_role("tab", name="No-code").click()
    ui.locator("[data-task='hello']").click()  # a viewer browses the tasks' forms, changes nothing
    expect(ui.get_by_role("form", name="Task properties").locator("input[name='id']")).to_be_disabled()
    expect(ui.get_by_role("button", name="Add a task")).to_have_count(0)
    expect(ui.get_by_role("button", name="Remove hello")).to_have_count(0)
    shot(ui, "editor-read-only")

    ui.goto(f"{server.url}/ui/executions/{server.execution_id}")
    expect(ui.get_by_test_id("execution-state")).to_have_text("SUCCESS")
    for name in ("Kill", "Restart", "Replay"):
        expect(ui.get_by_role("button", name=name, exact=True)).to_have_count(0)
    ui.get_by_role("tab", name="Logs").click()
    expect(ui.get_by_role("log")).to_contain_text("hi world")

    ui.goto(f"{server.url}/ui/triggers")
    expect(ui.get_by_role("checkbox", name="Enable yearly")).to_be_disabled()
    expect(ui.get_by_role("button", name="Backfill…")).to_have_count(0)

    ui.goto(f"{server.url}/ui/flows/company.team/app/run")
    expect(ui.get_by_role("alert")).to_contain_text("Your role on company.team is viewer")
    expect(ui.get_by_role("form", name="Inputs")).to_have_count(0)


def test_a_runner_executes_and_replays_but_does_not_edit(ui, server):
    login(ui, server, "rae")
    ui.locator("[data-flow='company.team.app']").get_by_role("link", name="Execute").click()
    form = ui.get_by_role("form", name="Inputs")
    form.locator("input[name='who']").fill("Rae")
    form.get_by_role("button", name="Execute").click()
    expect(ui).to_have_url(re.compile(r"/ui/executions/\w+$"))
    expect(ui.get_by_test_id("execution-state")).to_have_text("SUCCESS")
    expect(ui.get_by_role("button", name="Replay", exact=True)).to_be_visible()

    ui.goto(f"{server.url}/ui/flows/company.team/app")
    expect(ui.get_by_test_id("read-only")).to_have_text("Read-only: your role on company.team is runner")
    expect(ui.get_by_role("button", name="Execute", exact=True)).to_be_visible()
    expect(ui.get_by_test_id("problem-count")).to_have_text("0 problems", timeout=30_000)  # the editor has loaded
    ui.goto(f"{server.url}/ui/triggers")
    expect(ui.get_by_role("checkbox", name="Enable yearly")).to_be_disabled()
    expect(ui.get_by_role("button", name="Backfill…")).to_be_visible()


def test_an_editor_saves_with_ctrl_s_and_switches_triggers(ui, server):
    login(ui, server, "eddie", "/ui/flows/company.team/app")
    expect(ui.get_by_test_id("read-only")).to_have_count(0)
    save = ui.get_by_role("button", name="Save", exact=True)
    expect(save).to_be_enabled()
    ui.locator(".cm-line", has_text="hi {{ inputs.who }}").click()
    ui.keyboard.press("End")
    ui.keyboard.press("ArrowLeft")
    ui.keyboard.press("ArrowLeft")
    ui.keyboard.type("!")
    expect(ui.get_by_test_id("problem-count")).to_have_text("0 problems")
    ui.keyboard.press("Control+s")
    expect(ui.get_by_role("status")).to_have_text(re.compile(r"Saved revision \d+"))

    ui.goto(f"{server.url}/ui/triggers")
    toggle = ui.get_by_role("checkbox", name="Enable yearly")
    expect(toggle).to_be_enabled()
    with ui.expect_response(lambda r: "/triggers/search" in r.url):  # the list re-read after the change
        toggle.uncheck()
    ui.reload()
    expect(toggle).not_to_be_checked()
    with ui.expect_response(lambda r: "/triggers/search" in r.url):
        toggle.check()
    expect(toggle).to_be_checked()
