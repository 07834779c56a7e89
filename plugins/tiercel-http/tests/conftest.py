"""A real HTTP server on loopback for the HTTP components' tests (stdlib http.server in a thread)."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

BIG = 2 * 1024 * 1024
BINARY = bytes(range(256)) * 64


class Handler(BaseHTTPRequestHandler):
    """Routes for every behaviour the tests need; ``server.state`` is mutable by tests."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def send(self, code: int, body: bytes = b"", content_type: str = "text/plain; charset=utf-8",
             headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, value: Any, code: int = 200) -> None:
        self.send(code, json.dumps(value).encode(), "application/json")

    def handle_any(self) -> None:
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        state = self.server.state  # type: ignore[attr-defined]
        state["hits"] = state.get("hits", 0) + 1
        if path == "/":
            self.send(200, b"<html><body>index</body></html>", "text/html; charset=utf-8")
        elif path == "/post":  # httpbin.org's answer shape, for the examples
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
            self.send_json({"json": parsed, "data": body.decode("utf-8", "replace"),
                            "headers": {k.title(): v for k, v in self.headers.items()}})
        elif path == "/robots.txt":
            self.send(200, b"User-agent: *\nDisallow: /deny\n")
        elif path == "/json":
            self.send_json({"hello": "world", "n": 1})
        elif path == "/text":
            self.send(200, "plain text ✓".encode())
        elif path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            self.send(code, f"status {code} body".encode() + b" " + b"y" * 2000)
        elif path == "/echo":
            self.send_json({"method": self.command, "query": query, "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": body.decode("utf-8", "replace")})
        elif path == "/redirect":
            self.send(302, b"", headers={"Location": "/json"})
        elif path == "/big":
            self.send(200, b"x" * BIG)
        elif path == "/binary":
            self.send(200, BINARY, "application/octet-stream")
        elif path == "/slow":
            time.sleep(float(query or 2))
            self.send(200, b"late")
        elif path == "/file":
            self.send(200, b"id,name\n1,ada\n", "text/csv", {"Content-Disposition": 'attachment; filename="report.csv"'})
        elif path == "/empty":
            self.send(200, b"")
        elif path == "/version":
            self.send_json({"version": state.get("version", 1)}, state.get("code", 200))
        elif path == "/basic":
            expected = "Basic " + base64.b64encode(b"user:pa55").decode()
            if self.headers.get("Authorization") == expected:
                self.send_json({"user": "user"})
            else:
                self.send(401, b"who are you?", headers={"WWW-Authenticate": 'Basic realm="test"'})
        elif path == "/bearer":
            ok = self.headers.get("Authorization") == "Bearer t0ken"
            self.send_json({"ok": ok}, 200 if ok else 401)
        else:
            self.send(404, b"no route " + path.encode())

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any


class Server:
    BIG, BINARY = BIG, BINARY

    def __init__(self, httpd: ThreadingHTTPServer) -> None:
        self.httpd = httpd
        self.url = f"http://127.0.0.1:{httpd.server_address[1]}"

    @property
    def state(self) -> dict[str, Any]:
        return self.httpd.state  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def http_server() -> Iterator[Server]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.state = {}  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield Server(httpd)
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def server(http_server: Server) -> Server:
    http_server.state.clear()
    return http_server
