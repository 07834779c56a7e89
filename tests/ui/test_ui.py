"""The web UI in Debian's chromium against a real `tiercel server` (see conftest.py: every page is
checked for console errors, failed requests and requests to other hosts)."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from playwright.sync_api import expect

DEMO = """\
id: demo
namespace: company.team
# a comment that must survive
inputs:
  - {id: name, type: STRING, defaults: world}
tasks:
  - id: hello
    type: core.Log
    message: "Hello {{ inputs.name }}"
  - id: par
    type: core.Parallel
    tasks:
      - {id: nap, type: core.Sleep, duration: PT0.2S}
      - {id: colour, type: core.Log, message: "\\u001b[31mred\\u001b[0m text"}
  - id: answer
    type: core.Return
    format: "{{ 6 * 7 }}"
"""

LIVE = """\
id: live
namespace: company.ops
inputs:
  - {id: who, type: STRING}
  - {id: times, type: INT, defaults: 2}
  - {id: mood, type: SELECT, values: [calm, loud], defaults: calm}
tasks:
  - id: greet
    type: core.Log
    message: "hi {{ inputs.who }} ({{ inputs.mood }})"
  - id: wait
    type: core.Sleep
    duration: PT1.5S
  - id: bye
    type: core.Log
    message: bye
"""

BROKEN = """\
id: broken
namespace: company.ops
tasks:
  - {id: boom, type: core.Fail, errorMessage: no luck}
"""


@pytest.fixture(scope="module")
def flows(server):
    for source in (DEMO, LIVE, BROKEN):
        server.deploy(source)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        client.post("/api/v1/executions/company.team/demo", params={"wait": "true"}, json={}).raise_for_status()
    return server


def editor_text(page) -> str:
    """The editor's text (a small flow: every line is in the DOM)."""
    return "\n".join(page.locator(".cm-content .cm-line").all_inner_texts())


def set_editor(page, text: str) -> None:
    """Replace the editor's text as a paste would."""
    page.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(text)


def test_flows_list_namespace_tree_and_search(ui, flows, shot):
    ui.goto(f"{flows.url}/")
    expect(ui).to_have_url(re.compile(r"/ui/flows$"))
    expect(ui.locator("[data-flow]")).to_have_count(3)
    expect(ui.locator("[data-flow='company.team.demo']")).to_contain_text("SUCCESS")  # its last execution
    expect(ui.locator("[data-flow='company.ops.live']")).to_contain_text("never run")
    company = ui.locator("li", has=ui.locator("[data-namespace='company']"))
    expect(company.locator(".count")).to_have_text("3")
    ui.locator("[data-namespace='company.ops']").click()
    expect(ui).to_have_url(re.compile(r"namespace=company.ops"))
    expect(ui.locator("[data-flow]")).to_have_count(2)
    ui.get_by_label("Search flows").fill("bro")
    expect(ui.locator("[data-flow]")).to_have_count(1)
    ui.reload()  # the filters live in the URL
    expect(ui.locator("[data-flow='company.ops.broken']")).to_be_visible()
    expect(ui.locator("[data-flow]")).to_have_count(1)
    shot(ui, "flows")


def test_editor_schema_and_server_diagnostics_block_save_and_ctrl_s_saves(ui, flows, shot):
    ui.goto(f"{flows.url}/ui/flows/company.team/demo")
    count = ui.get_by_test_id("problem-count")
    # the editor has loaded (the first flow schema takes seconds on a busy machine)
    expect(count).to_have_text("0 problems", timeout=30_000)
    save = ui.get_by_role("button", name="Save", exact=True)

    ui.locator(".cm-content").click()
    ui.keyboard.press("Control+Home")
    ui.keyboard.insert_text("bogus: 1\n")
    started = time.monotonic()
    expect(ui.locator(".problems")).to_contain_text(
        "`bogus` is not allowed", timeout=2000
    )  # the schema, in the browser
    schema_latency = time.monotonic() - started
    expect(ui.locator(".cm-lintRange-error").first).to_be_visible()
    expect(ui.locator(".cm-lint-marker-error").first).to_be_visible()
    expect(save).to_be_disabled()
    ui.keyboard.press("Control+z")
    expect(count).to_have_text("0 problems")
    print(f"schema diagnostic shown {schema_latency * 1000:.0f} ms after the edit")
    assert schema_latency < 1.0

    # inside a task, its type's schema decides (checked in the browser's lint worker)
    set_editor(ui, DEMO.replace("format:", "formatt:"))
    expect(ui.locator(".problems li", has_text="(schema)")).to_contain_text("formatt", timeout=2000)

    # what only the server knows: two tasks with one id
    set_editor(ui, DEMO.replace("id: answer", "id: hello"))
    expect(ui.locator(".problems li", has_text="(server)")).to_contain_text("hello", timeout=4000)
    expect(ui.locator(".problems li", has_text="(server)")).to_contain_text("line ")
    expect(save).to_be_disabled()

    set_editor(ui, DEMO.replace("Hello {{", "Howdy {{"))
    expect(count).to_have_text("0 problems", timeout=4000)
    ui.locator(".cm-content").click()
    ui.keyboard.press("Control+s")
    expect(ui.get_by_role("status").filter(has_text="Saved revision")).to_have_text("Saved revision 2")
    source = httpx.get(f"{flows.url}/api/v1/flows/company.team/demo").json()["source"]
    assert "Howdy" in source and "# a comment that must survive" in source
    shot(ui, "editor")
    httpx.put(
        f"{flows.url}/api/v1/flows/company.team/demo", content=DEMO, headers={"Content-Type": "application/x-yaml"}
    ).raise_for_status()  # back as it was


def test_completion_offers_the_task_types_properties_and_hover_describes(ui, flows, shot):
    ui.goto(f"{flows.url}/ui/flows/company.team/demo")
    expect(ui.get_by_test_id("problem-count")).to_have_text("0 problems", timeout=30_000)
    ui.locator(".cm-line", has_text='message: "Hello').get_by_text("message").hover()
    expect(ui.locator(".cm-tooltip-hover")).to_contain_text("The message to log")  # core.Log's description
    ui.locator(".cm-line", has_text='message: "Hello').click()
    ui.keyboard.press("End")
    ui.keyboard.insert_text("\n    ")
    ui.keyboard.type("d")
    options = ui.locator(".cm-tooltip-autocomplete li")
    expect(options.first).to_be_visible()
    labels = options.all_inner_texts()
    assert any(label.startswith("description") for label in labels), labels  # core.Log's
    assert not any(label.startswith("duration") for label in labels), labels  # core.Sleep's, not offered here
    ui.keyboard.press("Escape")

    ui.keyboard.press("Backspace")
    ui.keyboard.insert_text("type: ")  # a second `type:` is fine for this: completion of the value
    ui.keyboard.press("Control+Space")
    expect(options.first).to_be_visible()
    values = " ".join(options.all_inner_texts())
    for name in ("core.Log", "core.Sleep", "core.Parallel", "core.Return"):
        assert name in values
    ui.keyboard.press("Escape")

    set_editor(ui, DEMO)
    ui.keyboard.insert_text('  - {id: echo, type: core.Log, message: "{{ ou')
    ui.keyboard.press("Control+Space")
    expect(options.filter(has_text="outputs.answer")).to_have_count(1)
    ui.keyboard.press("Escape")


def test_topology_follows_the_yaml_and_keeps_the_last_good_graph(ui, flows, shot):
    ui.goto(f"{flows.url}/ui/flows/company.team/demo")
    graph = ui.get_by_role("img", name="Flow topology")
    for uid in ("task:hello", "task:par", "task:nap", "task:colour", "task:answer"):
        expect(graph.locator(f"[data-node='{uid}']")).to_have_count(1)
    expect(graph.locator("[data-cluster='par']")).to_have_count(1)
    set_editor(ui, DEMO + "  - {id: extra, type: core.Log, message: more}\n")
    expect(graph.locator("[data-node='task:extra']")).to_have_count(1, timeout=2000)
    set_editor(ui, DEMO + "  - {id: extra, type: core.Nope}\n")
    expect(ui.get_by_role("status").filter(has_text="invalid")).to_be_visible()
    expect(graph.locator("[data-node='task:extra']")).to_have_count(1)  # the last good graph stays
    shot(ui, "topology")


def test_no_code_form_and_yaml_edit_each_other_keeping_comments(ui, flows, shot):
    ui.goto(f"{flows.url}/ui/flows/company.team/demo")
    expect(ui.get_by_test_id("problem-count")).to_have_text("0 problems", timeout=30_000)
    ui.get_by_role("tab", name="No-code").click()
    tree = ui.get_by_role("tree", name="Tasks")
    expect(tree.locator("[data-task]")).to_have_count(5)  # nested tasks of the Parallel included
    tree.locator("[data-task='hello']").click()
    form = ui.get_by_role("form", name="Task properties")
    message = form.locator("input[name='message']")
    expect(message).to_have_value("Hello {{ inputs.name }}")
    expect(form.locator("select[name='type']")).to_have_value("core.Log")
    message.fill("Bonjour {{ inputs.name }}")
    message.press("Tab")
    text = editor_text(ui)
    assert "Bonjour {{ inputs.name }}" in text
    assert "# a comment that must survive" in text
    assert text.index("id: hello") < text.index("id: par") < text.index("id: answer")  # order kept

    set_editor(ui, text.replace("Bonjour", "Hej"))
    expect(message).to_have_value("Hej {{ inputs.name }}")

    tree.get_by_role("button", name="Move hello down").click()
    text = editor_text(ui)
    assert text.index("id: par") < text.index("id: hello")
    ui.get_by_role("button", name="Add a task").click()
    expect(tree.locator("[data-task='task_4']")).to_have_count(1)
    assert "id: task_4" in editor_text(ui)
    shot(ui, "no-code")


def test_run_form_then_live_execution_with_gantt_and_logs(ui, flows, shot):
    ui.goto(f"{flows.url}/ui/flows/company.ops/live/run")
    form = ui.get_by_role("form", name="Inputs")
    expect(form.locator("input[name='times']")).to_have_value("2")
    expect(form.locator("select[name='mood']")).to_have_value("calm")
    form.get_by_role("button", name="Execute").click()
    expect(form.get_by_role("alert")).to_have_text("required")  # checked before anything is sent
    expect(ui).to_have_url(re.compile(r"/run$"))
    form.locator("input[name='who']").fill("Ada")
    form.locator("select[name='mood']").select_option("loud")
    form.get_by_role("button", name="Execute").click()

    expect(ui).to_have_url(re.compile(r"/ui/executions/\w+$"))
    execution_id = ui.url.rsplit("/", 1)[1]
    state = ui.get_by_test_id("execution-state")
    expect(state).to_have_text("RUNNING")
    wait_row = ui.locator("[data-taskrun]", has_text="wait")
    expect(wait_row).to_have_attribute("data-state", "RUNNING")
    first = wait_row.locator(".dur").inner_text()
    expect(wait_row.locator(".dur")).not_to_have_text(first)  # the running bar grows
    expect(wait_row).to_have_attribute("data-state", "RUNNING")
    expect(state).to_have_text("SUCCESS", timeout=10000)  # over SSE: no reload
    expect(wait_row).to_have_attribute("data-state", "SUCCESS")

    ex = httpx.get(f"{flows.url}/api/v1/executions/{execution_id}").json()
    assert ex["inputs"] == {"who": "Ada", "times": 2, "mood": "loud"}
    t0, t1 = (_ts(ex["startDate"]), _ts(ex["endDate"]))
    for tr in ex["taskRuns"]:
        bar = ui.locator(f"[data-taskrun='{tr['id']}'] .bar")
        left, w = float(bar.get_attribute("data-left")), float(bar.get_attribute("data-width"))
        assert abs(left - (_ts(tr["startDate"]) - t0) / (t1 - t0) * 100) < 1
        assert abs(w - (_ts(tr["endDate"]) - _ts(tr["startDate"])) / (t1 - t0) * 100) < 1

    ui.locator("[data-taskrun]", has_text="greet").click()
    expect(ui.get_by_role("log")).to_contain_text("hi Ada (loud)")
    shot(ui, "execution-gantt")
    ui.get_by_role("tab", name="Logs").click()
    expect(ui.get_by_role("log")).to_contain_text("bye")
    ui.get_by_role("tab", name="Topology").click()
    expect(ui.locator("[data-node='task:wait']")).to_have_attribute("data-state", "SUCCESS")
    shot(ui, "execution-topology")
    ui.reload()  # a deep link reloads to the same page
    expect(ui.get_by_test_id("execution-state")).to_have_text("SUCCESS")


def _ts(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_ten_thousand_log_lines_open_fast_virtualized_and_filtered(ui, flows, shot):
    from tiercel.backend import Stores

    r = httpx.post(f"{flows.url}/api/v1/executions/company.team/demo", params={"wait": "true"}, json={})
    execution_id = r.json()["id"]
    stores = Stores.open(flows.home / "tiercel.db")
    try:
        now = time.time()
        stores.logs.append(
            (
                execution_id,
                None,
                "bulk",
                1,
                "ERROR" if i % 100 == 0 else "INFO",
                f"line {i} \x1b[32mgreen\x1b[0m",
                now + i / 1000,
            )
            for i in range(10_000)
        )
    finally:
        stores.close()
    started = time.monotonic()
    ui.goto(f"{flows.url}/ui/executions/{execution_id}")
    ui.get_by_role("tab", name="Logs").click()
    count = ui.get_by_test_id("log-count")
    expect(count).to_have_text(re.compile(r"^100\d\d lines$"))
    opened = time.monotonic() - started
    print(f"10,000 log lines shown {opened * 1000:.0f} ms after navigation")
    assert opened < 2.0
    assert ui.locator(".line").count() <= 200
    expect(ui.locator(".line .ansi-green").last).to_have_text("green")
    ui.get_by_label("Level").select_option("ERROR")
    expect(count).to_have_text("100 lines")
    ui.get_by_label("Level").select_option("TRACE")
    ui.get_by_label("Task").select_option("say" if False else "bulk")
    expect(count).to_have_text("10000 lines")
    shot(ui, "execution-logs")


def test_executions_list_filters_in_the_url_and_bulk_restart(ui, flows, shot):
    with httpx.Client(base_url=flows.url, timeout=30) as client:
        for _ in range(2):
            client.post("/api/v1/executions/company.ops/broken", params={"wait": "true"}, json={}).raise_for_status()
    ui.goto(f"{flows.url}/ui/executions")
    ui.get_by_label("Flow").fill("broken")
    ui.get_by_label("State").select_option("FAILED")
    ui.get_by_role("button", name="Filter").click()
    expect(ui).to_have_url(re.compile(r"flowId=broken.*state=FAILED|state=FAILED.*flowId=broken"))
    rows = ui.locator("[data-execution]")
    expect(rows).to_have_count(2)
    ui.reload()
    expect(rows).to_have_count(2)
    expect(ui.get_by_label("State")).to_have_value("FAILED")
    ui.get_by_label("Select all").check()
    dialogs: list[str] = []
    ui.once("dialog", lambda d: (dialogs.append(d.message), d.accept()))
    ui.get_by_role("button", name="Restart").click()
    expect(ui.get_by_role("status")).to_have_text("restart: 2 done")
    assert dialogs == ["Restart 2 executions?"]
    shot(ui, "executions")


def test_an_unknown_page_says_so(ui, flows, shot):
    ui.goto(f"{flows.url}/ui/no/such/page")
    expect(ui.get_by_role("heading")).to_have_text("Page not found")


def test_the_guides_flow_deploys_and_opens_clean_in_the_editor(ui, flows, shot):
    """docs/user/ui.md stays true: its example flow is valid and the editor finds no problem in it."""
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[2] / "docs" / "user" / "ui.md").read_text()
    source = re.search(r"```yaml\n(.*?)```", guide, re.S).group(1)
    flows.deploy(source)
    ui.goto(f"{flows.url}/ui/flows/company.team/hello_ui")
    expect(ui.get_by_role("img", name="Flow topology").locator("[data-cluster='both']")).to_have_count(1)
    expect(ui.get_by_test_id("problem-count")).to_have_text("0 problems", timeout=30_000)
    ui.wait_for_timeout(700)  # the server's validation has answered by now: still clean
    expect(ui.get_by_test_id("problem-count")).to_have_text("0 problems")


SCHEDULED = """\
id: nightly
namespace: company.ops
triggers:
  - {id: yearly, type: core.Schedule, cron: "0 0 1 1 *"}
tasks:
  - {id: note, type: core.Log, message: "{{ trigger.date }}"}
"""


def test_triggers_toggle_persists_and_backfill_shows_progress(ui, flows, shot):
    flows.deploy(SCHEDULED)
    ui.goto(f"{flows.url}/ui/triggers")
    row = ui.locator("[data-trigger='company.ops/nightly/yearly']")
    expect(row).to_contain_text("core.Schedule")
    expect(row.locator("td").nth(3)).not_to_have_text("—")  # the next fire date
    toggle = row.get_by_label("Enable yearly")
    expect(toggle).to_be_checked()
    with ui.expect_response(lambda r: "/triggers/search" in r.url):  # the list re-read after the change
        toggle.uncheck()
    ui.reload()
    expect(toggle).not_to_be_checked()
    listed = httpx.get(f"{flows.url}/api/v1/triggers/company.ops/nightly").json()
    assert listed[0]["disabled"] is True
    with ui.expect_response(lambda r: "/triggers/search" in r.url):
        toggle.check()
    expect(toggle).to_be_checked()

    row.get_by_role("button", name="Backfill…").click()
    form = row.get_by_role("form", name="Backfill yearly")
    form.locator("input[name='start']").fill("2023-06-01T00:00")
    form.locator("input[name='end']").fill("2026-06-01T00:00")
    with ui.expect_response(lambda r: "/triggers/search" in r.url):
        form.get_by_role("button", name="Start").click()
    expect(form).to_have_count(0)  # accepted: the form closes, the row shows the backfill while it runs

    def backfilled() -> int:
        r = httpx.get(f"{flows.url}/api/v1/executions/search", params={"flowId": "nightly"})
        return r.json()["total"]

    deadline = time.monotonic() + 10
    while backfilled() < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert backfilled() == 3  # 1 January 2024, 2025, 2026
    shot(ui, "triggers")


def test_plugins_page_documents_each_component(ui, flows, shot):
    ui.goto(f"{flows.url}/ui/plugins")
    ui.get_by_label("Filter components").fill("core.Sleep")
    ui.locator("[data-component='core.Sleep']").get_by_role("button").click()
    doc = ui.get_by_role("article", name="Component documentation")
    expect(doc.locator("code", has_text="duration")).to_have_count(1)


def test_a_plugin_example_becomes_a_new_flow(ui, flows, shot):
    ui.goto(f"{flows.url}/ui/plugins")
    ui.get_by_label("Filter components").fill("core.storage.Write")
    ui.locator("[data-component='core.storage.Write']").get_by_role("button").click()
    example = ui.get_by_role("region", name="Example: Write a small CSV, then read it back")
    expect(example.locator("pre")).to_contain_text("id: write_example")
    shot(ui, "plugins")
    example.get_by_role("button", name="Use as a new flow").click()
    expect(ui).to_have_url(f"{flows.url}/ui/flows/new")
    expect(ui.locator(".cm-content")).to_contain_text("id: write_example")
    expect(ui.get_by_test_id("problem-count")).to_have_text("0 problems", timeout=30_000)
    ui.keyboard.press("Control+s")
    expect(ui).to_have_url(f"{flows.url}/ui/flows/company.team/write_example")
    ui.reload()  # saved: the example is now a deployed flow (and the draft was taken once)
    expect(ui.locator(".cm-content")).to_contain_text("id: write_example")


@pytest.mark.network_drop
def test_a_dropped_connection_reconnects_without_duplicate_rows(ui, flows, shot):
    r = httpx.post(f"{flows.url}/api/v1/executions/company.ops/live", json={"who": "Bob"})
    execution_id = r.json()["id"]
    ui.goto(f"{flows.url}/ui/executions/{execution_id}")
    ui.get_by_role("tab", name="Logs").click()
    expect(ui.get_by_role("log")).to_contain_text("hi Bob")
    ui.context.set_offline(True)  # both event streams drop
    ui.wait_for_timeout(300)
    ui.context.set_offline(False)
    expect(ui.get_by_test_id("execution-state")).to_have_text("SUCCESS", timeout=10000)
    expect(ui.get_by_role("log")).to_contain_text("bye")
    logs = httpx.get(f"{flows.url}/api/v1/logs/{execution_id}").json()
    expect(ui.get_by_test_id("log-count")).to_have_text(f"{len(logs)} lines")  # each line once
    assert ui.locator(".line", has_text="hi Bob").count() == 1


APPROVAL = """\
id: approval
namespace: company.ops
tasks:
  - id: approve
    type: core.Pause
    onResume:
      - {id: reason, type: STRING}
  - id: done
    type: core.Log
    message: "Approved: {{ outputs.approve.onResume.reason }}"
"""


def test_a_paused_execution_resumes_with_its_on_resume_form(ui, flows, shot):
    flows.deploy(APPROVAL)
    execution_id = httpx.post(f"{flows.url}/api/v1/executions/company.ops/approval", json={}).json()["id"]
    ui.goto(f"{flows.url}/ui/executions/{execution_id}")
    form = ui.get_by_role("form", name="Resume")
    form.get_by_label("reason").fill("looks good")
    form.get_by_role("button", name="Resume").click()
    expect(ui.get_by_test_id("execution-state")).to_have_text("SUCCESS", timeout=10000)
    ui.get_by_role("tab", name="Logs").click()
    expect(ui.get_by_role("log")).to_contain_text("Approved: looks good")


FILES = """\
id: files
namespace: company.team
tasks:
  - id: report
    type: core.storage.Write
    content: |
      name,score
      ada,3
    extension: .csv
  - id: blob
    type: core.storage.Write
    content: "\\u0000\\u0001binary"
    extension: .bin
  - id: total
    type: core.OutputValues
    values: {answer: 42}
"""


def test_outputs_tab_previews_and_downloads_the_files_of_an_execution(ui, flows, shot):
    flows.deploy(FILES)
    with httpx.Client(base_url=flows.url, timeout=30) as client:
        ex = client.post("/api/v1/executions/company.team/files", params={"wait": "true"}, json={}).json()
    assert ex["state"] == "SUCCESS", ex
    ui.goto(f"{flows.url}/ui/executions/{ex['id']}")
    ui.get_by_role("tab", name="Outputs").click()
    files = ui.get_by_role("table", name="Output files")
    expect(files.locator("[data-file]")).to_have_count(2, timeout=15000)
    expect(ui.get_by_role("table", name="Output values")).to_contain_text("42")

    ui.get_by_role("button", name="Preview result.csv").click()
    expect(ui.get_by_test_id("preview-text")).to_have_text("name,score\nada,3\n", timeout=15000)
    shot(ui, "execution-outputs")
    ui.get_by_role("button", name="Preview result.bin").click()
    expect(ui.get_by_test_id("preview-binary")).to_be_visible(timeout=15000)

    with ui.expect_download(timeout=15000) as download:
        ui.get_by_role("link", name="Download result.csv").click()
    assert download.value.suggested_filename == "result.csv"
    with open(download.value.path(), "rb") as fh:
        assert fh.read() == b"name,score\nada,3\n"


def test_a_namespace_page_shows_its_namespaces_flows_and_recent_executions(ui, flows, shot):
    ui.goto(f"{flows.url}/ui/flows")
    ui.get_by_role("link", name="Open namespace company", exact=True).click()
    expect(ui).to_have_url(f"{flows.url}/ui/namespaces/company")
    inside = ui.get_by_role("list", name="Namespaces inside")
    expect(inside.locator("[data-child='company.team']")).to_be_visible()
    expect(inside.locator("[data-child='company.ops']")).to_be_visible()
    table = ui.get_by_role("table", name="Flows")
    expect(table.locator("[data-flow='company.team.demo']")).to_contain_text("SUCCESS")
    expect(table.locator("[data-flow='company.ops.live']")).to_be_visible()
    expect(ui.get_by_role("table", name="Recent executions").locator("[data-execution]").first).to_contain_text(
        "company.")
    shot(ui, "namespace")

    inside.locator("[data-child='company.ops']").click()
    expect(ui).to_have_url(f"{flows.url}/ui/namespaces/company.ops")
    expect(ui.get_by_role("table", name="Flows").locator("[data-flow='company.team.demo']")).to_have_count(0)
    expect(ui.get_by_role("table", name="Flows").locator("[data-flow='company.ops.broken']")).to_be_visible()
    ui.reload()  # a deep link
    expect(ui.get_by_role("heading", name="Namespace company.ops")).to_be_visible()
    ui.get_by_role("navigation", name="Parent namespaces").get_by_role("link", name="company").click()
    expect(ui).to_have_url(f"{flows.url}/ui/namespaces/company")
