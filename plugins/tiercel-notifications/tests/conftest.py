"""Real local receivers: an HTTP server that records every request, and aiosmtpd SMTP servers
(plain with STARTTLS offered, STARTTLS required with login, and SMTPS) with a trustme CA."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


class Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append(
            {
                "method": self.command,
                "path": self.path,  # type: ignore[attr-defined]
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "json": json.loads(body) if body else None,
            }
        )
        if self.path.startswith("/status/"):
            code, answer = int(self.path.split("/")[2]), {"error": "no_such_hook"}
        elif self.path == "/slack/api":
            ok = self.headers.get("Authorization") == "Bearer xoxb-good"
            code, answer = (
                200,
                {"ok": True, "ts": "1700000000.0001", "channel": "C1"}
                if ok
                else {"ok": False, "error": "invalid_auth"},
            )
        elif self.path.endswith("/sendMessage"):
            code, answer = 200, {"ok": True, "result": {"message_id": 7}}
        else:
            code, answer = 200, {"accepted": True}
        data = json.dumps(answer).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_PUT = do_PATCH = do_POST


class HttpReceiver:
    def __init__(self, httpd: ThreadingHTTPServer) -> None:
        self.httpd = httpd
        self.url = f"http://127.0.0.1:{httpd.server_address[1]}"

    @property
    def received(self) -> list[dict[str, Any]]:
        return self.httpd.received  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def _httpd() -> Iterator[HttpReceiver]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    httpd.daemon_threads = True
    httpd.received = []  # type: ignore[attr-defined]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield HttpReceiver(httpd)
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def receiver(_httpd: HttpReceiver) -> HttpReceiver:
    _httpd.received.clear()
    return _httpd


@dataclass
class Smtp:
    port: int
    messages: list[Any] = field(default_factory=list)

    def clear(self) -> None:
        self.messages.clear()


class _Handler:
    def __init__(self, box: list[Any]) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        from email import message_from_bytes, policy

        self.box.append(
            {
                "from": envelope.mail_from,
                "rcpt": list(envelope.rcpt_tos),
                "tls": session.ssl is not None or server.transport.get_extra_info("sslcontext") is not None,
                "login": session.auth_data,
                "message": message_from_bytes(envelope.content, policy=policy.default),
            }
        )
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def smtp_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Smtp]]:
    """Three aiosmtpd servers; the trustme CA is what `SSL_CERT_FILE` points at during the tests."""
    import ssl

    import trustme
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))

    def check(server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> AuthResult:
        return AuthResult(
            success=(auth.login, auth.password) == (b"mailer", b"s3cret-pw"), auth_data=auth.login, handled=False
        )

    servers: dict[str, Smtp] = {}
    controllers = []
    for name, kwargs in {
        "plain": {"tls_context": server_ctx},
        "starttls": {
            "tls_context": server_ctx,
            "require_starttls": True,
            "authenticator": check,
            "auth_require_tls": True,
        },
        "smtps": {"ssl_context": server_ctx},
    }.items():
        box = Smtp(_free_port())
        controller = Controller(_Handler(box.messages), hostname="127.0.0.1", port=box.port, **kwargs)
        if name == "smtps":  # the controller's readiness probe must speak TLS to an SMTPS server
            controller.ssl_context = server_ctx
        controllers.append(controller)
        servers[name] = box
    mp = pytest.MonkeyPatch()
    mp.setenv("SSL_CERT_FILE", str(ca_file))
    for controller in controllers:
        controller.start()
    yield servers
    for controller in controllers:
        controller.stop()
    mp.undo()


@pytest.fixture
def smtp(smtp_servers: dict[str, Smtp]) -> dict[str, Smtp]:
    for box in smtp_servers.values():
        box.clear()
    return smtp_servers
