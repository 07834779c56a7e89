"""E-mail over SMTP: ``MailSend`` (a message you write) and ``MailExecution`` (a summary of an execution).

Sent with aiosmtplib (imported on first use): SMTP with STARTTLS when the server offers it
(``SMTP``), STARTTLS required (``SMTP_TLS``) or TLS from the first byte (``SMTPS``).
"""

from __future__ import annotations

import mimetypes
from datetime import timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from tiercel import Example, RunContext, Task, TaskError
from tiercel_notifications import _execution
from tiercel_notifications._execution import ExecutionMessage

KESTRA = "io.kestra.plugin.notifications.mail"


def _addresses(value: Any) -> Any:
    """Kestra writes recipients as one comma-separated string; a list is accepted too."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


Addresses = Annotated[list[str], BeforeValidator(_addresses)]


class Attachment(BaseModel):
    """A file from internal storage attached to the message."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="File name shown to the reader.")
    uri: str = Field(description="The file's `tiercel://` address (a task's output).")
    contentType: str | None = Field(None, description="MIME type; guessed from `name` when omitted.")


class _Mail(Task):
    host: str = Field(description="SMTP server host.")
    port: int = Field(25, description="SMTP server port: usually 25 or 587 (`SMTP`, `SMTP_TLS`), 465 (`SMTPS`).")
    username: str | None = Field(None, description="User to log in as.")
    password: str | None = Field(None, description="Password; write `{{ secret('NAME') }}`. Never logged.")
    transportStrategy: Literal["SMTP", "SMTP_TLS", "SMTPS"] = Field(
        "SMTP",
        description="`SMTP`: plain, upgraded with STARTTLS when the server offers it; `SMTP_TLS`: STARTTLS "
        "required; `SMTPS`: TLS from the start.",
    )
    sessionTimeout: timedelta = Field(timedelta(seconds=30), description="Longest wait for the server at each step.")
    from_: str = Field(alias="from", description="Sender address (`Name <a@b.c>` allowed).")
    to: Addresses = Field(description="Recipients: a list, or one comma-separated string.")
    cc: Addresses | None = Field(None, description="Copy recipients.")
    bcc: Addresses | None = Field(
        None, description="Blind-copy recipients: they get the message, no header names them."
    )
    replyTo: str | None = Field(None, description="Address replies go to.")
    subject: str | None = Field(None, description="Subject line.")

    def build(self, ctx: RunContext) -> Any:
        raise NotImplementedError

    async def run(self, ctx: RunContext) -> dict[str, Any]:
        import aiosmtplib

        message = self.build(ctx)
        message["From"] = self.from_
        message["To"] = ", ".join(self.to)
        if self.cc:
            message["Cc"] = ", ".join(self.cc)
        if self.replyTo:
            message["Reply-To"] = self.replyTo
        if self.subject:
            message["Subject"] = self.subject
        recipients = [*self.to, *(self.cc or []), *(self.bcc or [])]
        timeout = self.sessionTimeout.total_seconds()
        where = f"{self.host}:{self.port}"
        try:
            await aiosmtplib.send(
                message,
                recipients=recipients,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.transportStrategy == "SMTPS",
                start_tls=True
                if self.transportStrategy == "SMTP_TLS"
                else (False if self.transportStrategy == "SMTPS" else None),
                timeout=timeout,
            )
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise TaskError(
                f"the SMTP server {where} refused the login of {self.username!r}: {exc.code} {exc.message}"
            ) from None
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = ", ".join(r.recipient for r in exc.recipients)
            raise TaskError(f"the SMTP server {where} refused the recipients {refused}") from None
        except aiosmtplib.SMTPResponseException as exc:
            raise TaskError(f"the SMTP server {where} answered {exc.code} {exc.message}") from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise TaskError(
                f"could not send through the SMTP server {where} ({self.transportStrategy}): {exc}"
            ) from None
        ctx.logger.info("mail %r sent through %s to %d recipient(s)", self.subject or "", where, len(recipients))
        return {"recipients": len(recipients)}


class MailSend(_Mail):
    """Send an e-mail: text and/or HTML body, cc and bcc, attachments from internal storage."""

    type: ClassVar[str] = "notifications.mail.MailSend"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.MailSend",)
    examples: ClassVar[list[Example]] = [
        Example(
            "Mail a report with an attachment",
            """\
id: mail_example
namespace: company.team
inputs:
  - id: smtp_host
    type: STRING
    defaults: smtp.example.com
  - id: smtp_port
    type: INT
    defaults: 587
tasks:
  - id: report
    type: core.Return
    format: done
  - id: mail
    type: notifications.mail.MailSend
    host: "{{ inputs.smtp_host }}"
    port: "{{ inputs.smtp_port }}"
    from: Tiercel <tiercel@example.com>
    to: [ops@example.com]
    cc: lead@example.com
    subject: "Flow {{ flow.id }} finished"
    plainTextContent: "Execution {{ execution.id }} finished: {{ outputs.report.value }}"
    htmlTextContent: "<p>Execution <b>{{ execution.id }}</b> finished</p>"
""",
            run=False,
        )
    ]

    plainTextContent: str | None = Field(None, description="Text body.")
    htmlTextContent: str | None = Field(
        None, description="HTML body (sent with the text one as an alternative when both are set)."
    )
    attachments: list[Attachment] | None = Field(None, description="Files from internal storage to attach.")

    def build(self, ctx: RunContext) -> Any:
        from email.message import EmailMessage

        if self.plainTextContent is None and self.htmlTextContent is None:
            raise TaskError(f"{self.type}: set `plainTextContent` or `htmlTextContent`")
        message = EmailMessage()
        if self.plainTextContent is not None:
            message.set_content(self.plainTextContent)
        if self.htmlTextContent is not None:
            if self.plainTextContent is None:
                message.set_content(self.htmlTextContent, subtype="html")
            else:
                message.add_alternative(self.htmlTextContent, subtype="html")
        for attachment in self.attachments or []:
            kind = attachment.contentType or mimetypes.guess_type(attachment.name)[0] or "application/octet-stream"
            maintype, _, subtype = kind.partition("/")
            try:
                with ctx.open_file(attachment.uri) as stream:
                    data = stream.read()
            except (FileNotFoundError, ValueError) as exc:
                raise TaskError(f"attachment `{attachment.name}`: cannot read {attachment.uri} ({exc})") from None
            message.add_attachment(data, maintype=maintype, subtype=subtype or "octet-stream", filename=attachment.name)
        return message


class MailExecution(ExecutionMessage, _Mail):
    """Mail a summary of an execution (flow, state, failed tasks, link), as text and HTML."""

    type: ClassVar[str] = "notifications.mail.MailExecution"
    aliases: ClassVar[tuple[str, ...]] = (f"{KESTRA}.MailExecution",)
    examples: ClassVar[list[Example]] = [
        Example(
            "Mail a summary of this execution",
            """\
id: mail_execution_example
namespace: company.team
inputs:
  - id: smtp_host
    type: STRING
    defaults: smtp.example.com
  - id: smtp_port
    type: INT
    defaults: 587
tasks:
  - id: mail
    type: notifications.mail.MailExecution
    host: "{{ inputs.smtp_host }}"
    port: "{{ inputs.smtp_port }}"
    from: tiercel@example.com
    to: ops@example.com
""",
            run=False,
        )
    ]

    def build(self, ctx: RunContext) -> Any:
        from email.message import EmailMessage
        from html import escape

        title, detail = _execution.lines(ctx, self)
        if not self.subject:
            self.subject = title
        message = EmailMessage()
        message.set_content("\n".join([title, "", *detail]))
        message.add_alternative(
            f"<h3>{escape(title)}</h3><ul>" + "".join(f"<li>{escape(d)}</li>" for d in detail) + "</ul>", subtype="html"
        )
        return message
