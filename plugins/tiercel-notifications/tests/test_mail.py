"""MailSend and MailExecution against real aiosmtpd servers: plain, STARTTLS with login, SMTPS."""

from __future__ import annotations

from tiercel.testing import run_flow, task_run


def test_text_html_cc_bcc_and_an_attachment_from_internal_storage(smtp, tmp_path):
    home = tmp_path / "home"
    source = f"""\
id: mailer
namespace: company.team
tasks:
  - id: csv
    type: scripts.Shell
    commands: ["printf 'id,name\\n1,ada\\n' > out.csv"]
    outputFiles: [out.csv]
  - id: mail
    type: io.kestra.plugin.notifications.mail.MailSend
    host: 127.0.0.1
    port: {smtp["plain"].port}
    from: Tiercel <tiercel@example.com>
    to: "ops@example.com, dev@example.com"
    cc: [lead@example.com]
    bcc: [audit@example.com]
    subject: "Flow {{{{ flow.id }}}} report"
    plainTextContent: "rows attached"
    htmlTextContent: "<p>rows <b>attached</b></p>"
    attachments:
      - name: report.csv
        uri: "{{{{ outputs.csv.outputFiles['out.csv'] }}}}"
"""
    ex = run_flow(source, home=home)
    assert ex["state"] == "SUCCESS", ex
    [got] = smtp["plain"].messages
    assert got["rcpt"] == ["ops@example.com", "dev@example.com", "lead@example.com", "audit@example.com"]
    assert got["tls"]  # the server offered STARTTLS: the client took it
    msg = got["message"]
    assert msg["Subject"] == "Flow mailer report" and msg["To"] == "ops@example.com, dev@example.com"
    assert msg["Cc"] == "lead@example.com" and msg["Bcc"] is None and "audit" not in msg.as_string()
    assert msg.get_body(("plain",)).get_content().strip() == "rows attached"
    assert msg.get_body(("html",)).get_content().strip() == "<p>rows <b>attached</b></p>"
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "report.csv" and attachment.get_content_type() == "text/csv"
    assert attachment.get_content() == "id,name\n1,ada\n"
    assert task_run(ex, "mail")["outputs"] == {"recipients": 4}


def test_starttls_with_login_from_a_secret_and_smtps(smtp, tmp_path, monkeypatch):
    monkeypatch.setenv("TIERCEL_SECRET_SMTP_PASSWORD", "s3cret-pw")
    ex = run_flow(
        f"""\
id: mailer
namespace: company.team
tasks:
  - id: starttls
    type: notifications.mail.MailSend
    host: localhost
    port: {smtp["starttls"].port}
    transportStrategy: SMTP_TLS
    username: mailer
    password: "{{{{ secret('SMTP_PASSWORD') }}}}"
    from: tiercel@example.com
    to: ops@example.com
    subject: over starttls
    htmlTextContent: "<p>hi</p>"
  - id: smtps
    type: notifications.mail.MailSend
    host: 127.0.0.1
    port: {smtp["smtps"].port}
    transportStrategy: SMTPS
    from: tiercel@example.com
    to: ops@example.com
    plainTextContent: over ssl
  - id: wrong_password
    type: notifications.mail.MailSend
    host: 127.0.0.1
    port: {smtp["starttls"].port}
    transportStrategy: SMTP_TLS
    username: mailer
    password: nope
    from: tiercel@example.com
    to: ops@example.com
    plainTextContent: refused
""",
        home=tmp_path / "home",
    )
    [tls] = smtp["starttls"].messages
    assert tls["tls"] and tls["login"] == b"mailer" and tls["message"]["Subject"] == "over starttls"
    assert tls["message"].get_content_type() == "text/html"
    [ssl] = smtp["smtps"].messages
    assert ssl["tls"] and ssl["message"].get_content().strip() == "over ssl"
    error = task_run(ex, "wrong_password")["error"]
    assert "refused the login of 'mailer': 535" in error
    assert "s3cret-pw" not in str(ex)


def test_mail_execution_summarises_the_execution(smtp, tmp_path):
    ex = run_flow(
        f"""\
id: mailer
namespace: company.team
tasks:
  - id: mail
    type: notifications.mail.MailExecution
    host: 127.0.0.1
    port: {smtp["plain"].port}
    from: tiercel@example.com
    to: ops@example.com
    customMessage: "<please look>"
""",
        home=tmp_path / "home",
    )
    assert ex["state"] == "SUCCESS", ex
    msg = smtp["plain"].messages[0]["message"]
    assert msg["Subject"] == "ℹ️ company.team.mailer ended RUNNING"
    assert f"Execution: {ex['id']}" in msg.get_body(("plain",)).get_content()
    assert "&lt;please look&gt;" in msg.get_body(("html",)).get_content()


def test_an_unreachable_server_fails_clearly(tmp_path):
    ex = run_flow(
        """\
id: mailer
namespace: company.team
tasks:
  - id: mail
    type: notifications.mail.MailSend
    host: 127.0.0.1
    port: 9
    sessionTimeout: PT5S
    from: tiercel@example.com
    to: ops@example.com
    plainTextContent: lost
""",
        home=tmp_path / "home",
    )
    assert task_run(ex, "mail")["error"].startswith("could not send through the SMTP server 127.0.0.1:9 (SMTP)")
