"""The registry's conformance suite for every SFTP, FTP and FTPS component, against the private servers."""

import re
import socket
import uuid
from pathlib import Path

import pytest
from tiercel_fs.components import COMPONENTS

from tiercel_registry import TaskConformance, TriggerConformance

# Accepts connections but never answers: a connection waits until it is cancelled.
SILENT = socket.socket()
SILENT.bind(("127.0.0.1", 0))
SILENT.listen(64)
HANGS = {"host": "127.0.0.1", "port": SILENT.getsockname()[1], "from": "/"}


def _seed(root: Path) -> None:
    for folder in ("upload", "archive"):
        (root / folder).mkdir(exist_ok=True)
    (root / "upload" / "report.csv").write_text("id,name\n")
    (root / "upload" / "old.csv").write_text("old\n")


class _FtpTask(TaskConformance):
    @pytest.fixture
    def example_inputs(self, ftp_server, monkeypatch):
        monkeypatch.setenv("TIERCEL_SECRET_FTP_PASSWORD", "ftp-pw")
        _seed(Path(ftp_server["root"]))
        return {"host": "127.0.0.1", "port": ftp_server["port"]}


class _FtpTrigger(TriggerConformance):
    @pytest.fixture
    def properties(self, ftp_server, monkeypatch):
        monkeypatch.setenv("TIERCEL_SECRET_FTP_PASSWORD", "ftp-pw")
        folder = f"in-{uuid.uuid4().hex[:8]}"
        (Path(ftp_server["root"]) / folder).mkdir()
        self.folder = Path(ftp_server["root"]) / folder
        return {
            "host": "127.0.0.1",
            "port": ftp_server["port"],
            "from": f"/{folder}",
            "moveDirectory": f"/{folder}-done",
        }

    @pytest.fixture
    def emit(self, properties):
        return lambda: (self.folder / f"{uuid.uuid4().hex[:6]}.csv").write_text("x")


class _FtpsTrigger(TriggerConformance):
    @pytest.fixture
    def properties(self, ftps_explicit, monkeypatch):
        monkeypatch.setenv("TIERCEL_SECRET_FTPS_PASSWORD", "ftp-pw")
        folder = f"in-{uuid.uuid4().hex[:8]}"
        self.folder = Path(ftps_explicit["root"]) / folder
        self.folder.mkdir()
        return {
            "host": "127.0.0.1",
            "port": ftps_explicit["port"],
            "insecureTrustAllCertificates": True,
            "from": f"/{folder}",
            "moveDirectory": f"/{folder}-done",
        }

    @pytest.fixture
    def emit(self, properties):
        return lambda: (self.folder / f"{uuid.uuid4().hex[:6]}.csv").write_text("x")


class _SftpTrigger(TriggerConformance):
    @pytest.fixture
    def properties(self, sshd, tmp_path, monkeypatch):
        monkeypatch.setenv("TIERCEL_SECRET_SFTP_PASSWORD", "unused: the key logs in")
        self.folder = tmp_path / "in"
        self.folder.mkdir()
        return {
            "host": "127.0.0.1",
            "port": sshd["port"],
            "username": sshd["user"],
            "keyfile": sshd["key"],
            "from": str(self.folder),
            "moveDirectory": str(tmp_path / "done"),
        }

    @pytest.fixture
    def emit(self, properties):
        return lambda: (self.folder / f"{uuid.uuid4().hex[:6]}.csv").write_text("x")


for _cls in COMPONENTS.values():
    protocol = _cls.type.split(".")[1]
    if _cls.type.endswith(".Trigger"):
        base = {"ftp": _FtpTrigger, "ftps": _FtpsTrigger}.get(protocol, _SftpTrigger)
        attrs = {}
    else:
        base = _FtpTask if protocol == "ftp" else TaskConformance
        attrs = {"long_run": HANGS} if _cls.type.endswith((".List", ".Downloads")) else {}
    _name = "Test_" + re.sub(r"\W", "_", _cls.type)
    globals()[_name] = type(_name, (base,), {"component": _cls, **attrs})
