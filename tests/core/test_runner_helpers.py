"""tiercel.runners: the pieces runner plugins share, held to core.Process's behaviour."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tiercel import TaskError
from tiercel.runners import LineSplitter, extract_outputs, glob_match, input_tar, output_name, shell_script


@pytest.mark.parametrize(
    ("path", "pattern", "expected"),
    [
        ("out.txt", "*.txt", True),
        ("sub/out.txt", "*.txt", False),
        ("sub/out.txt", "sub/*.txt", True),
        ("a/b/c.bin", "**/*.bin", True),
        ("c.bin", "**/*.bin", True),
        ("a/b/c.bin", "./a/b/c.bin", True),
        ("x.txt", "y.txt", False),
    ],
)
def test_glob_match_is_pathlib_glob(path: str, pattern: str, expected: bool, tmp_path: Path) -> None:
    (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / path).write_text("x")
    assert glob_match(path, pattern) is expected
    assert (path in [p.relative_to(tmp_path).as_posix() for p in tmp_path.glob(pattern.removeprefix("./"))]) is expected


def test_output_names() -> None:
    assert output_name(".output/r.csv", []) == "r.csv"
    assert output_name("r.csv", ["*.csv"]) == "r.csv"
    assert output_name("in.txt", ["*.csv"]) is None
    with pytest.raises(TaskError, match="../x"):
        output_name("a", ["../x"])


@pytest.mark.parametrize(("fail_fast", "expected"), [(True, (2, "a\n")), (False, (2, "a\nc\n"))])
def test_shell_script_exit_codes(fail_fast: bool, expected: tuple[int, str]) -> None:
    script = shell_script([["echo", "a"], ["sh", "-c", "exit 2"], ["echo", "c"], ["false"]], fail_fast)
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    assert (done.returncode, done.stdout) == expected


def test_input_tar_round_trip(tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(bytes(range(256)) * 100)
    tar = input_tar({"a/b/in.txt": b"hello", "big.bin": source, ".output/o.txt": b"out"}, "work/")
    files = extract_outputs(tar, tmp_path / "dest", ["a/**/*.txt", "*.bin"], strip="work/")
    assert {name: path.read_bytes() for name, path in files.items()} == {
        "a/b/in.txt": b"hello",
        "big.bin": source.read_bytes(),
        "o.txt": b"out",
    }
    with pytest.raises(TaskError, match="relative path"):
        input_tar({"../escape": b""})


def test_line_splitter_keeps_utf8_across_chunks() -> None:
    lines: list[str] = []
    split = LineSplitter(lines.append)
    data = "é1\r\nline two\nno end".encode()
    for i in range(len(data)):
        split.feed(data[i : i + 1])
    split.close()
    assert lines == ["é1", "line two", "no end"]
