"""`tiercel server --access-log` (or TIERCEL_ACCESS_LOG=1) logs one line per request; without it, none. The
server logs one line per execution start and end either way."""

from __future__ import annotations

from tiercel.testing.harness import TiercelServer


def test_access_log_on_request(tmp_path):
    flow = "id: tick\nnamespace: demo.log\ntasks:\n  - {id: a, type: core.Log, message: hi}\n"
    for flag, expected in ((["--access-log"], True), ([], False)):
        server = TiercelServer(tmp_path / f"home{expected}", args=flag).start()
        try:
            with server.client() as client:
                assert client.post("/api/v1/flows", content=flow, headers={"Content-Type": "application/x-yaml"}).status_code == 200
                assert client.get("/api/v1/flows/demo.log/tick").status_code == 200
                run = client.post("/api/v1/executions/demo.log/tick?wait=true")
                assert run.status_code == 200, run.text
        finally:
            server.stop()
        log = server.log.read_text()
        assert ('"GET /api/v1/flows/demo.log/tick HTTP/1.1" 200' in log) is expected, log
        assert "of demo.log.tick started" in log and "ended SUCCESS" in log, log
