"""Chat and webhook notifications: Slack, Microsoft Teams, Discord, Google Chat, Telegram, any webhook.

Each service has a task that sends a message you write (``payload``, Kestra's property: a map or a
JSON string, or ``messageText`` for plain text) and an ``*Execution`` task that sends a ready-made
summary of an execution: its flow, state, failed tasks and a link.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from tiercel import Example, RunContext, Task, TaskError
from tiercel_notifications import _execution
from tiercel_notifications._execution import ExecutionMessage
from tiercel_notifications._send import payload_of, post

KESTRA = "io.kestra.plugin.notifications"
URL = "The incoming-webhook URL; it is a credential, so write `{{ secret('NAME') }}`. Never logged."
PAYLOAD = "The message as the service's JSON: a map, or a JSON string (rendered first)."


class _Webhook(Task):
    """Base of the tasks that POST one JSON message to an incoming-webhook URL."""

    service: ClassVar[str] = "the webhook"

    url: str = Field(description=URL)

    def message(self, ctx: RunContext) -> Any:
        raise NotImplementedError

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        await post(ctx, self.service, self.url, json_body=self.message(ctx))
        return {}


class _Custom(_Webhook):
    payload: str | dict[str, Any] | None = Field(None, description=PAYLOAD)
    messageText: str | None = Field(None, description="Plain text to send instead of a `payload`.")

    text_key: ClassVar[str] = "text"

    def message(self, ctx: RunContext) -> Any:
        if self.payload is not None:
            return payload_of(self.payload)
        if self.messageText is not None:
            return {self.text_key: self.messageText}
        raise TaskError(f"{self.type}: set `payload` or `messageText`")


def _flow(task: str, body: str, inputs: str = "") -> str:
    return f"""\
id: notify_example
namespace: company.team
inputs:
  - id: webhook
    type: STRING
    defaults: https://hooks.example.com/services/T000/B000/XXXX
{inputs}tasks:
  - id: notify
    type: {task}
{body}"""


class SlackIncomingWebhook(_Custom):
    """Send a message to a Slack channel through an incoming webhook (Block Kit or plain text)."""

    type: ClassVar[str] = "notifications.slack.SlackIncomingWebhook"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.slack.SlackIncomingWebhook",)
    service: ClassVar[str] = "the Slack webhook"
    examples: ClassVar[list[Example]] = [
        Example(
            "Post a message to Slack",
            _flow(
                type,
                """\
    url: "{{ inputs.webhook }}"
    payload: |
      {"text": "Flow {{ flow.id }} ran as {{ execution.id }}"}
""",
            ),
            run=False,
        )
    ]


class SlackExecution(ExecutionMessage, _Webhook):
    """Send a summary of an execution (flow, state, failed tasks, link) to Slack through an incoming webhook."""

    type: ClassVar[str] = "notifications.slack.SlackExecution"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.slack.SlackExecution",)
    service: ClassVar[str] = "the Slack webhook"
    examples: ClassVar[list[Example]] = [
        Example(
            "Report this execution to Slack",
            _flow(
                type,
                """\
    url: "{{ inputs.webhook }}"
    channel: "#alerts"
    customMessage: "nightly load"
""",
            ),
            run=False,
        )
    ]

    channel: str | None = Field(None, description="Channel to post to, when the webhook allows overriding it.")
    username: str | None = Field(None, description="Name shown as the sender.")
    iconUrl: str | None = Field(None, description="Image shown as the sender's icon.")
    iconEmoji: str | None = Field(None, description="Emoji shown as the sender's icon (`:rotating_light:`).")

    def message(self, ctx: RunContext) -> Any:
        title, detail = _execution.lines(ctx, self)
        body: dict[str, Any] = {"text": f"*{title}*\n" + "\n".join(detail)}
        extra = {
            "channel": self.channel,
            "username": self.username,
            "icon_url": self.iconUrl,
            "icon_emoji": self.iconEmoji,
        }
        return body | {k: v for k, v in extra.items() if v}


class SlackApp(Task):
    """Post a message with a Slack app's bot token (`chat.postMessage`); outputs the message's `ts` and `channel`."""

    type: ClassVar[str] = "notifications.slack.SlackApp"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.slack.SlackApp",)
    examples: ClassVar[list[Example]] = [
        Example(
            "Post as a Slack app",
            """\
id: slack_app_example
namespace: company.team
inputs:
  - id: api
    type: STRING
    defaults: https://slack.com/api/chat.postMessage
tasks:
  - id: post
    type: notifications.slack.SlackApp
    url: "{{ inputs.api }}"
    token: "{{ secret('SLACK_BOT_TOKEN') }}"
    channel: C0123456789
    messageText: "Flow {{ flow.id }} is done"
""",
            run=False,
        )
    ]

    token: str = Field(description="The bot token (`xoxb-…`); write `{{ secret('NAME') }}`. Never logged.")
    channel: str = Field(description="Channel id or name to post to.")
    messageText: str | None = Field(None, description="Plain text of the message.")
    payload: str | dict[str, Any] | None = Field(
        None, description="The full `chat.postMessage` arguments (blocks, thread_ts…), a map or a JSON string."
    )
    url: str = Field("https://slack.com/api/chat.postMessage", description="The Web API method's URL.")

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        body = dict(payload_of(self.payload) or {})
        if self.messageText is not None:
            body["text"] = self.messageText
        if not body:
            raise TaskError(f"{self.type}: set `payload` or `messageText`")
        body["channel"] = self.channel
        answer = await post(
            ctx, "the Slack API", self.url, json_body=body, headers={"Authorization": f"Bearer {self.token}"}
        )
        if not isinstance(answer, dict) or not answer.get("ok"):
            error = answer.get("error") if isinstance(answer, dict) else str(answer)[:200]
            raise TaskError(f"Slack refused the message: {error}")
        return {"ts": answer.get("ts"), "channel": answer.get("channel")}


class TeamsIncomingWebhook(_Custom):
    """Send a message (a MessageCard or an Adaptive Card) to a Microsoft Teams channel through a webhook."""

    type: ClassVar[str] = "notifications.teams.TeamsIncomingWebhook"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.teams.TeamsIncomingWebhook",)
    service: ClassVar[str] = "the Teams webhook"
    examples: ClassVar[list[Example]] = [
        Example(
            "Post a card to Teams",
            _flow(
                type,
                """\
    url: "{{ inputs.webhook }}"
    payload:
      "@type": MessageCard
      summary: "Flow {{ flow.id }}"
      text: "Flow {{ flow.id }} ran as {{ execution.id }}"
""",
            ),
            run=False,
        )
    ]


class TeamsExecution(ExecutionMessage, _Webhook):
    """Send a summary of an execution to Microsoft Teams (a MessageCard)."""

    type: ClassVar[str] = "notifications.teams.TeamsExecution"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.teams.TeamsExecution",)
    service: ClassVar[str] = "the Teams webhook"
    examples: ClassVar[list[Example]] = [
        Example(
            "Report this execution to Teams",
            _flow(
                type,
                """\
    url: "{{ inputs.webhook }}"
""",
            ),
            run=False,
        )
    ]

    themeColor: str | None = Field(
        None, description="Card colour (hex, `FF0000`); by default red on failure, green on success."
    )

    def message(self, ctx: RunContext) -> Any:
        title, detail = _execution.lines(ctx, self)
        failed = "❌" in title
        return {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": title,
            "themeColor": self.themeColor or ("D32F2F" if failed else "2E7D32"),
            "title": title,
            "text": "<br>".join(detail),
        }


class DiscordIncomingWebhook(_Custom):
    """Send a message to a Discord channel through a webhook."""

    type: ClassVar[str] = "notifications.discord.DiscordIncomingWebhook"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.discord.DiscordIncomingWebhook",)
    service: ClassVar[str] = "the Discord webhook"
    text_key: ClassVar[str] = "content"
    examples: ClassVar[list[Example]] = [
        Example(
            "Post to Discord",
            _flow(
                type,
                """\
    url: "{{ inputs.webhook }}"
    messageText: "Flow {{ flow.id }} ran as {{ execution.id }}"
""",
            ),
            run=False,
        )
    ]


class DiscordExecution(ExecutionMessage, _Webhook):
    """Send a summary of an execution to Discord (an embed)."""

    type: ClassVar[str] = "notifications.discord.DiscordExecution"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.discord.DiscordExecution",)
    service: ClassVar[str] = "the Discord webhook"
    examples: ClassVar[list[Example]] = [
        Example(
            "Report this execution to Discord",
            _flow(
                type,
                """\
    url: "{{ inputs.webhook }}"
    username: Tiercel
""",
            ),
            run=False,
        )
    ]

    username: str | None = Field(None, description="Name shown as the sender.")
    avatarUrl: str | None = Field(None, description="Image shown as the sender's avatar.")
    content: str | None = Field(None, description="Text above the embed.")

    def message(self, ctx: RunContext) -> Any:
        title, detail = _execution.lines(ctx, self)
        body: dict[str, Any] = {
            "embeds": [
                {"title": title, "description": "\n".join(detail), "color": 0xD32F2F if "❌" in title else 0x2E7D32}
            ]
        }
        extra = {"username": self.username, "avatar_url": self.avatarUrl, "content": self.content}
        return body | {k: v for k, v in extra.items() if v}


class GoogleChatIncomingWebhook(_Custom):
    """Send a message to a Google Chat space through a webhook."""

    type: ClassVar[str] = "notifications.google.GoogleChatIncomingWebhook"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.google.GoogleChatIncomingWebhook",)
    service: ClassVar[str] = "the Google Chat webhook"
    examples: ClassVar[list[Example]] = [
        Example(
            "Post to Google Chat",
            _flow(
                type,
                """\
    url: "{{ inputs.webhook }}"
    payload: {"text": "Flow {{ flow.id }} ran as {{ execution.id }}"}
""",
            ),
            run=False,
        )
    ]


class GoogleChatExecution(ExecutionMessage, _Webhook):
    """Send a summary of an execution to a Google Chat space."""

    type: ClassVar[str] = "notifications.google.GoogleChatExecution"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.google.GoogleChatExecution",)
    service: ClassVar[str] = "the Google Chat webhook"
    examples: ClassVar[list[Example]] = [
        Example(
            "Report this execution to Google Chat",
            _flow(
                type,
                """\
    url: "{{ inputs.webhook }}"
""",
            ),
            run=False,
        )
    ]

    def message(self, ctx: RunContext) -> Any:
        title, detail = _execution.lines(ctx, self)
        return {"text": f"*{title}*\n" + "\n".join(detail)}


class _Telegram(Task):
    token: str = Field(description="The bot token; write `{{ secret('NAME') }}`. Never logged.")
    channel: str = Field(description="Chat id (`-1001234567890`) or public channel name (`@alerts`).")
    parseMode: Literal["MarkdownV2", "HTML", "Markdown"] | None = Field(
        None, description="How Telegram formats the text."
    )
    endpointOverride: str = Field("https://api.telegram.org", description="The Bot API's address.")

    def text(self, ctx: RunContext) -> str:
        raise NotImplementedError

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        body: dict[str, Any] = {"chat_id": self.channel, "text": self.text(ctx)}
        if self.parseMode:
            body["parse_mode"] = self.parseMode
        url = f"{self.endpointOverride.rstrip('/')}/bot{self.token}/sendMessage"
        answer = await post(ctx, "the Telegram Bot API", url, json_body=body)
        if not isinstance(answer, dict) or not answer.get("ok"):
            raise TaskError(
                f"Telegram refused the message: {answer.get('description') if isinstance(answer, dict) else answer}"
            )
        return {"messageId": (answer.get("result") or {}).get("message_id")}


_TELEGRAM_INPUTS = """\
  - id: api
    type: STRING
    defaults: https://api.telegram.org
"""


class TelegramSend(_Telegram):
    """Send a text message to a Telegram chat with a bot; outputs the `messageId`."""

    type: ClassVar[str] = "notifications.telegram.TelegramSend"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.telegram.TelegramSend",)
    examples: ClassVar[list[Example]] = [
        Example(
            "Message a Telegram chat",
            """\
id: telegram_example
namespace: company.team
inputs:
  - id: api
    type: STRING
    defaults: https://api.telegram.org
tasks:
  - id: send
    type: notifications.telegram.TelegramSend
    endpointOverride: "{{ inputs.api }}"
    token: "{{ secret('TELEGRAM_TOKEN') }}"
    channel: "@alerts"
    payload: "Flow {{ flow.id }} is done"
""",
            run=False,
        )
    ]

    payload: str = Field(description="The text of the message (Kestra's name for it).")

    def text(self, ctx: RunContext) -> str:
        return self.payload


class TelegramExecution(ExecutionMessage, _Telegram):
    """Send a summary of an execution to a Telegram chat."""

    type: ClassVar[str] = "notifications.telegram.TelegramExecution"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.telegram.TelegramExecution",)
    examples: ClassVar[list[Example]] = [
        Example(
            "Report this execution to Telegram",
            """\
id: telegram_execution_example
namespace: company.team
inputs:
  - id: api
    type: STRING
    defaults: https://api.telegram.org
tasks:
  - id: send
    type: notifications.telegram.TelegramExecution
    endpointOverride: "{{ inputs.api }}"
    token: "{{ secret('TELEGRAM_TOKEN') }}"
    channel: "@alerts"
""",
            run=False,
        )
    ]

    def text(self, ctx: RunContext) -> str:
        return _execution.text(ctx, self)


class Webhook(Task):
    """Send a JSON message to any webhook (PagerDuty, Opsgenie, Mattermost, your own service); outputs `body`."""

    type: ClassVar[str] = "notifications.webhook.Webhook"
    examples: ClassVar[list[Example]] = [
        Example(
            "Call a webhook with a JSON body",
            _flow(
                type,
                """\
    url: "{{ inputs.webhook }}"
    headers:
      X-Source: tiercel
    payload:
      flow: "{{ flow.id }}"
      execution: "{{ execution.id }}"
""",
            ),
            run=False,
        )
    ]

    url: str = Field(
        description="The webhook URL; if it holds a credential, write `{{ secret('NAME') }}`. Never logged."
    )
    method: Literal["POST", "PUT", "PATCH"] = Field("POST", description="HTTP method.")
    headers: dict[str, str] | None = Field(
        None, description="Request headers (an `Authorization` header is never logged)."
    )
    payload: str | dict[str, Any] | list[Any] | None = Field(
        None, description="The JSON body: a map, a list or a JSON string."
    )

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        answer = await post(
            ctx, "the webhook", self.url, json_body=payload_of(self.payload), method=self.method, headers=self.headers
        )
        return {"body": answer}
