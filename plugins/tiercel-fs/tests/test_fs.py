"""Every task and the trigger over SFTP (a private OpenSSH server) and FTP (pyftpdlib), checked on the
folders the servers serve."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tiercel.testing import TriggerHarness, read_file, run_flow, task_run, write_file


@pytest.fixture(params=["sftp", "ftp", "ftps-explicit", "ftps-implicit"])
def server(request, tmp_path):
    """(protocol, connection YAML, base path as the server names it, that folder on disk)."""
    if request.param.startswith("ftps"):  # explicit and implicit TLS, data in TLS (PROT P), self-signed certificate
        ftps = request.getfixturevalue(request.param.replace("-", "_"))
        disk = Path(ftps["root"]) / tmp_path.name
        disk.mkdir()
        conn = (
            f"host: 127.0.0.1\nport: {ftps['port']}\nusername: tiercel\npassword: ftp-pw\nmode: {ftps['mode']}\n"
            "insecureTrustAllCertificates: true"
        )
        return "ftps", conn, f"/{tmp_path.name}", disk
    if request.param == "ftp":
        ftp = request.getfixturevalue("ftp_server")
        disk = Path(ftp["root"]) / tmp_path.name
        disk.mkdir()
        conn = f"host: 127.0.0.1\nport: {ftp['port']}\nusername: tiercel\npassword: \"{{{{ secret('FS_PASSWORD') }}}}\""
        request.getfixturevalue("monkeypatch").setenv("TIERCEL_SECRET_FS_PASSWORD", "ftp-pw")
        return "ftp", conn, f"/{tmp_path.name}", disk
    sshd = request.getfixturevalue("sshd")
    request.getfixturevalue("monkeypatch").setenv("TIERCEL_SECRET_FS_KEY", sshd["key"])
    disk = tmp_path / "served"
    disk.mkdir()
    conn = (
        f"host: 127.0.0.1\nport: {sshd['port']}\nusername: {sshd['user']}\nkeyfile: \"{{{{ secret('FS_KEY') }}}}\"\n"
        f'knownHosts: "{sshd["host_key"].strip()}"'
    )
    return "sftp", conn, str(disk), disk


def task(kind: str, conn: str, task_id: str, props: str) -> str:
    lines = [f"  - id: {task_id}", f"    type: fs.{kind}"] + [
        f"    {line}" for line in (conn + "\n" + props).splitlines()
    ]
    return "\n".join(lines) + "\n"


def test_upload_list_download_move_downloads_delete(server, tmp_path):
    proto, conn, base, disk = server
    home = tmp_path / "home"
    write_file("tiercel://company/team/_files/report.csv", b"id,name\n1,ada\n", home)
    (disk / "in").mkdir()
    (disk / "in" / "skip.txt").write_text("no")
    tasks = (
        task(f"{proto}.Upload", conn, "up", f"from: tiercel://company/team/_files/report.csv\nto: {base}/in/new/")
        + task(f"{proto}.Uploads", conn, "ups", f"from: [tiercel://company/team/_files/report.csv]\nto: {base}/many")
        + task(f"{proto}.List", conn, "ls", f"from: {base}/in\nrecursive: true\nregExp: '.*\\.csv'")
        + task(f"{proto}.Download", conn, "get", f"from: {base}/in/new/report.csv")
        + task(f"{proto}.Move", conn, "mv", f"from: {base}/in/new/report.csv\nto: {base}/in/moved.csv")
        + task(f"{proto}.Downloads", conn, "all", f"from: {base}/in\naction: MOVE\nmoveDirectory: {base}/done")
        + task(f"io.kestra.plugin.fs.{proto}.Delete".removeprefix("fs."), conn, "rm", f"uri: {base}/done/skip.txt")
        + task(f"{proto}.Delete", conn, "rm_missing", f"uri: {base}/nope.txt\nerrorOnMissing: true\nallowFailure: true")
    )
    tasks = tasks.replace("type: fs.io.kestra", "type: io.kestra")
    ex = run_flow(f"id: fs\nnamespace: company.team\ntasks:\n{tasks}", home=home)
    assert task_run(ex, "up")["outputs"] == {"to": f"{base}/in/new/report.csv"}
    assert task_run(ex, "ups")["outputs"] == {"files": [f"{base}/many/report.csv"], "size": 1}
    assert (disk / "many" / "report.csv").read_bytes() == b"id,name\n1,ada\n"
    [listed] = task_run(ex, "ls")["outputs"]["files"]
    assert listed["path"] == f"{base}/in/new/report.csv" and listed["size"] == 14 and listed["name"] == "report.csv"
    assert read_file(task_run(ex, "get")["outputs"]["uri"], home) == b"id,name\n1,ada\n"
    got = task_run(ex, "all")["outputs"]
    assert sorted(got["outputFiles"]) == ["moved.csv", "skip.txt"]
    assert read_file(got["outputFiles"]["moved.csv"], home) == b"id,name\n1,ada\n"
    assert sorted(p.name for p in (disk / "done").iterdir()) == ["moved.csv"]  # skip.txt deleted after the move
    assert not (disk / "in" / "moved.csv").exists() and task_run(ex, "rm")["outputs"]["deleted"] is True
    assert task_run(ex, "rm_missing")["error"] == f"{base}/nope.txt does not exist"


def test_trigger_starts_one_execution_per_new_file_and_moves_it(server, tmp_path):
    proto, conn, base, disk = server
    (disk / "incoming").mkdir()
    (disk / "incoming" / "a.csv").write_text("a")
    (disk / "incoming" / "ignore.txt").write_text("x")
    props = "\n".join(f"    {line}" for line in conn.splitlines())
    source = f"""\
id: watch
namespace: company.team
tasks:
  - id: log
    type: core.Log
    message: "{{{{ trigger.files | length }}}}"
triggers:
  - id: new_files
    type: fs.{proto}.Trigger
{props}
    from: {base}/incoming
    regExp: '.*\\.csv'
    action: MOVE
    moveDirectory: {base}/archive
    interval: PT1S
"""

    async def scenario(h: TriggerHarness) -> tuple:
        first = await h.poll_once()
        created = await h.deliver(first)
        again = await h.poll_once()
        (disk / "incoming" / "b.csv").write_text("b")
        second = await h.poll_once()
        return first, created, again, second

    with TriggerHarness(source, tmp_path / "home") as h:
        first, created, again, second = asyncio.run(scenario(h))
        assert [f["name"] for f in first.variables["files"]] == ["a.csv"]
        assert h.open_file(first.variables["files"][0]["uri"]).read() == b"a"
    assert created is not None and again is None
    assert [f["name"] for f in second.variables["files"]] == ["b.csv"]
    assert (disk / "archive" / "a.csv").read_text() == "a" and not (disk / "incoming" / "a.csv").exists()
    assert (disk / "incoming" / "b.csv").exists()  # its event was never delivered: not moved


def test_login_refused_is_a_clear_error(ftp_server, tmp_path):
    ex = run_flow(
        f"""\
id: fs
namespace: company.team
tasks:
  - id: ls
    type: fs.ftp.List
    host: 127.0.0.1
    port: {ftp_server["port"]}
    username: tiercel
    password: wrong-pw
    from: /
""",
        home=tmp_path / "home",
    )
    error = task_run(ex, "ls")["error"]
    assert error.startswith(f"the FTP server 127.0.0.1:{ftp_server['port']} refused the login of 'tiercel'")
    assert "wrong-pw" not in error


def test_the_user_guide_flow_collects_reports(ftp_server, tmp_path, monkeypatch):
    import re

    monkeypatch.setenv("TIERCEL_SECRET_FTP_PASSWORD", "ftp-pw")
    guide = Path(__file__).resolve().parents[3] / "docs/user/file-transfer.md"
    source = re.findall(r"```yaml\n(.*?)```", guide.read_text(), re.S)[0]
    reports = Path(ftp_server["root"]) / "reports"
    reports.mkdir(exist_ok=True)
    (reports / "jan.csv").write_text("1\n")
    (reports / "notes.txt").write_text("keep\n")
    ex = run_flow(source, {"port": ftp_server["port"]}, home=tmp_path / "home")
    assert ex["state"] == "SUCCESS", ex
    assert task_run(ex, "reports")["outputs"]["size"] == 1
    assert (reports / "done" / "jan.csv").exists() and (reports / "notes.txt").exists()


def ftps_flow(ftps_server: dict, props: str, kind: str = "io.kestra.plugin.fs.ftps.List") -> str:
    return f"""\
id: ftps
namespace: company.team
tasks:
  - id: ls
    type: {kind}
    host: 127.0.0.1
    port: {ftps_server["port"]}
    username: tiercel
    password: ftp-pw
    mode: {ftps_server["mode"].lower()}
    from: /
{props}"""


def test_ftps_checks_the_certificate_unless_told_not_to(ftps_server, tmp_path):
    ex = run_flow(ftps_flow(ftps_server, ""), home=tmp_path / "home")
    error = task_run(ex, "ls")["error"]
    assert ex["state"] == "FAILED"
    assert error.startswith(f"TLS with the FTPS server 127.0.0.1:{ftps_server['port']} failed: CERTIFICATE_VERIFY_FAILED")
    assert "insecureTrustAllCertificates" in error
    trusted = run_flow(ftps_flow(ftps_server, "    insecureTrustAllCertificates: true\n"), home=tmp_path / "home")
    assert trusted["state"] == "SUCCESS", task_run(trusted, "ls")["error"]


def test_ftps_clear_data_channel_is_sent_as_prot_c(ftps_server, tmp_path):
    """The server requires private data connections: PROT C is refused there, by the server's own words."""
    props = "    insecureTrustAllCertificates: true\n    dataChannelProtectionLevel: C\n"
    ex = run_flow(ftps_flow(ftps_server, props), home=tmp_path / "home")
    error = task_run(ex, "ls")["error"]
    assert error.startswith(f"FTPS 127.0.0.1:{ftps_server['port']}: ") and "SSL/TLS required on the data channel" in error


def test_the_user_guide_ftps_flow_uploads_over_implicit_tls(ftps_implicit, tmp_path, monkeypatch):
    import re

    monkeypatch.setenv("TIERCEL_SECRET_FTPS_PASSWORD", "ftp-pw")
    guide = Path(__file__).resolve().parents[3] / "docs/user/file-transfer.md"
    source = re.findall(r"```yaml\n(.*?)```", guide.read_text(), re.S)[1]
    ex = run_flow(source, {"port": ftps_implicit["port"]}, home=tmp_path / "home")
    assert ex["state"] == "SUCCESS", [t["error"] for t in ex["taskRuns"] if t["error"]]
    assert (Path(ftps_implicit["root"]) / "outbox" / "payments.csv").read_text() == "id,amount\n1,12.5\n"
    assert [f["name"] for f in task_run(ex, "check")["outputs"]["files"]] == ["payments.csv"]
