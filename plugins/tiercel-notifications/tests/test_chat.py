"""Chat and webhook tasks, run in real flows against a local HTTP receiver: what the service receives."""

from __future__ import annotations

import logging

from tiercel.testing import run_flow, task_run


def flow(tasks: str) -> str:
    return f"id: notify\nnamespace: company.team\ntasks:\n{tasks}"


def run(source: str, tmp_path, **kw):
    return run_flow(source, home=tmp_path / "home", **kw)


def test_slack_teams_discord_google_webhooks_receive_the_rendered_payload(receiver, tmp_path):
    ex = run(
        flow(f"""\
  - id: slack
    type: io.kestra.plugin.notifications.slack.SlackIncomingWebhook
    url: {receiver.url}/slack/hook
    payload: |
      {{"text": "flow {{{{ flow.id }}}} says {{{{ 6 * 7 }}}}"}}
  - id: teams
    type: notifications.teams.TeamsIncomingWebhook
    url: {receiver.url}/teams
    payload: {{"@type": MessageCard, text: "{{{{ execution.id }}}}"}}
  - id: discord
    type: notifications.discord.DiscordIncomingWebhook
    url: {receiver.url}/discord
    messageText: hello discord
  - id: google
    type: notifications.google.GoogleChatIncomingWebhook
    url: {receiver.url}/google
    messageText: hello chat
"""),
        tmp_path,
    )
    assert ex["state"] == "SUCCESS", ex
    got = {r["path"]: r["json"] for r in receiver.received}
    assert got["/slack/hook"] == {"text": "flow notify says 42"}
    assert got["/teams"] == {"@type": "MessageCard", "text": ex["id"]}
    assert got["/discord"] == {"content": "hello discord"}
    assert got["/google"] == {"text": "hello chat"}


def test_slack_app_posts_with_the_bot_token_and_outputs_ts(receiver, tmp_path, monkeypatch):
    monkeypatch.setenv("TIERCEL_SECRET_SLACK_BOT_TOKEN", "xoxb-good")
    ex = run(
        flow(f"""\
  - id: post
    type: notifications.slack.SlackApp
    url: {receiver.url}/slack/api
    token: "{{{{ secret('SLACK_BOT_TOKEN') }}}}"
    channel: C1
    messageText: deployed
    payload: {{thread_ts: "1.5"}}
  - id: refused
    type: notifications.slack.SlackApp
    url: {receiver.url}/slack/api
    token: xoxb-bad
    channel: C1
    messageText: nope
"""),
        tmp_path,
    )
    sent = receiver.received[0]
    assert sent["headers"]["authorization"] == "Bearer xoxb-good"
    assert sent["json"] == {"thread_ts": "1.5", "text": "deployed", "channel": "C1"}
    assert task_run(ex, "post")["outputs"] == {"ts": "1700000000.0001", "channel": "C1"}
    assert "Slack refused the message: invalid_auth" in task_run(ex, "refused")["error"]


def test_telegram_and_generic_webhook(receiver, tmp_path):
    ex = run(
        flow(f"""\
  - id: telegram
    type: io.kestra.plugin.notifications.telegram.TelegramSend
    endpointOverride: {receiver.url}
    token: "123:abc"
    channel: "@alerts"
    parseMode: HTML
    payload: "<b>{{{{ flow.id }}}}</b> done"
  - id: hook
    type: notifications.webhook.Webhook
    url: {receiver.url}/pager
    method: PUT
    headers: {{X-Source: tiercel}}
    payload: [1, "{{{{ flow.namespace }}}}"]
"""),
        tmp_path,
    )
    assert ex["state"] == "SUCCESS", ex
    telegram, hook = receiver.received
    assert telegram["path"] == "/bot123:abc/sendMessage"
    assert telegram["json"] == {"chat_id": "@alerts", "text": "<b>notify</b> done", "parse_mode": "HTML"}
    assert task_run(ex, "telegram")["outputs"] == {"messageId": 7}
    assert hook["method"] == "PUT" and hook["headers"]["x-source"] == "tiercel"
    assert hook["json"] == [1, "company.team"]
    assert task_run(ex, "hook")["outputs"] == {"body": {"accepted": True}}


def test_a_refused_or_unreachable_webhook_fails_without_showing_its_url(receiver, tmp_path, monkeypatch, caplog):
    secret_path = "/status/404/T000/B000/s3cretpath"
    monkeypatch.setenv("TIERCEL_SECRET_HOOK", f"{receiver.url}{secret_path}")
    caplog.set_level(logging.DEBUG)
    ex = run(
        flow(f"""\
  - id: refused
    type: notifications.slack.SlackIncomingWebhook
    url: "{{{{ secret('HOOK') }}}}"
    messageText: hi
    allowFailure: true
  - id: literal
    type: notifications.discord.DiscordIncomingWebhook
    url: {receiver.url}{secret_path}
    messageText: hi
    allowFailure: true
  - id: unreachable
    type: notifications.google.GoogleChatIncomingWebhook
    url: http://127.0.0.1:9/hook/s3cretpath?token=s3cretpath
    messageText: hi
    allowFailure: true
  - id: bad_json
    type: notifications.teams.TeamsIncomingWebhook
    url: {receiver.url}/teams
    payload: '{{"text": oops}}'
"""),
        tmp_path,
    )
    assert ex["state"] == "FAILED"
    refused = task_run(ex, "refused")["error"]  # the URL came from a secret: even its host is masked
    assert refused.startswith("the Slack webhook at ") and "answered 404 Not Found" in refused
    assert secret_path not in refused
    literal = task_run(ex, "literal")["error"]  # its host is part of a secret's value: masked too
    assert literal.startswith("the Discord webhook at ") and "answered 404" in literal
    unreachable = task_run(ex, "unreachable")["error"]  # `http://127.0.0.1:` is masked: a secret contains it
    assert unreachable.startswith("could not reach the Google Chat webhook at ") and "(ConnectError)" in unreachable
    assert "s3cretpath" not in unreachable
    assert "`payload` is not valid JSON" in task_run(ex, "bad_json")["error"]
    assert "s3cretpath" not in str(ex) and "s3cretpath" not in caplog.text


def test_execution_summaries_name_the_flow_state_and_link(receiver, tmp_path):
    ex = run(
        flow(f"""\
  - id: slack
    type: notifications.slack.SlackExecution
    url: {receiver.url}/slack
    channel: "#alerts"
    iconEmoji: ":bird:"
    customMessage: nightly load
    customFields: {{env: prod}}
    serverUrl: http://tiercel.local:8080/
  - id: teams
    type: notifications.teams.TeamsExecution
    url: {receiver.url}/teams
  - id: discord
    type: notifications.discord.DiscordExecution
    url: {receiver.url}/discord
    username: Tiercel
  - id: google
    type: notifications.google.GoogleChatExecution
    url: {receiver.url}/google
  - id: telegram
    type: notifications.telegram.TelegramExecution
    endpointOverride: {receiver.url}
    token: "1:x"
    channel: "42"
"""),
        tmp_path,
    )
    assert ex["state"] == "SUCCESS", ex
    got = {r["path"]: r["json"] for r in receiver.received}
    slack = got["/slack"]
    assert slack["channel"] == "#alerts" and slack["icon_emoji"] == ":bird:"
    assert slack["text"].startswith("*ℹ️ company.team.notify ended RUNNING*")
    assert (
        f"Execution: {ex['id']}" in slack["text"] and "nightly load" in slack["text"] and "env: prod" in slack["text"]
    )
    assert f"Link: http://tiercel.local:8080/api/v1/executions/{ex['id']}" in slack["text"]
    assert got["/teams"]["@type"] == "MessageCard" and "company.team.notify" in got["/teams"]["title"]
    assert got["/discord"]["username"] == "Tiercel" and ex["id"] in got["/discord"]["embeds"][0]["description"]
    assert ex["id"] in got["/google"]["text"]
    assert ex["id"] in got["/bot1:x/sendMessage"]["text"]
