"""Entry point of tiercel-notifications: chat, webhook and e-mail tasks."""

from __future__ import annotations

from collections.abc import Callable

from tiercel import hookimpl

TIERCEL_API = ">=1.0,<2"


@hookimpl
def register_tasks(register: Callable[[type], None]) -> None:
    from tiercel_notifications import chat, mail

    for task in (
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
    ):
        register(task)
