"""The registry's conformance suite for every notification task, against the local receivers."""

import re
import socket

import pytest
from tiercel_notifications import chat, mail

from tiercel_registry import TaskConformance

# Accepts connections (the kernel's backlog does) but never answers: a send waits until cancelled.
SILENT = socket.socket()
SILENT.bind(("127.0.0.1", 0))
SILENT.listen(64)
SILENT_URL = f"http://127.0.0.1:{SILENT.getsockname()[1]}"

TASKS = [
    chat.SlackIncomingWebhook,
    chat.SlackExecution,
    chat.SlackApp,
    chat.TeamsIncomingWebhook,
    chat.TeamsExecution,
    chat.DiscordIncomingWebhook,
    chat.DiscordExecution,
    chat.GoogleChatIncomingWebhook,
    chat.GoogleChatExecution,
    chat.TelegramSend,
    chat.TelegramExecution,
    chat.Webhook,
    mail.MailSend,
    mail.MailExecution,
]


def long_run(task: type) -> dict:
    if issubclass(task, mail._Mail):
        body = {"plainTextContent": "x"} if task is mail.MailSend else {}
        return {
            "host": "127.0.0.1",
            "port": SILENT.getsockname()[1],
            "from": "a@example.com",
            "to": "b@example.com",
            **body,
        }
    if issubclass(task, chat._Telegram):
        return {
            "endpointOverride": SILENT_URL,
            "token": "1:x",
            "channel": "1",
            **({"payload": "x"} if task is chat.TelegramSend else {}),
        }
    if task is chat.SlackApp:
        return {"url": SILENT_URL, "token": "x", "channel": "C1", "messageText": "x"}
    return {"url": f"{SILENT_URL}/hook", "messageText": "x"} if issubclass(task, chat._Custom) else {"url": SILENT_URL}


class _Notification(TaskConformance):
    @pytest.fixture
    def example_inputs(self, receiver, smtp, monkeypatch):
        monkeypatch.setenv("TIERCEL_SECRET_SLACK_BOT_TOKEN", "xoxb-good")
        monkeypatch.setenv("TIERCEL_SECRET_TELEGRAM_TOKEN", "1:telegram")
        return {
            "webhook": f"{receiver.url}/hook",
            "api": f"{receiver.url}/slack/api" if self.component is chat.SlackApp else receiver.url,
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp["plain"].port,
        }


for _task in TASKS:
    _name = "Test_" + re.sub(r"\W", "_", _task.type)
    globals()[_name] = type(_name, (_Notification,), {"component": _task, "long_run": long_run(_task)})
