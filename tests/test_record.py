"""Recording a real program's trace with valgrind's lackey tool."""

from __future__ import annotations

import gzip
import os
import shutil

import pytest

from rvi_tui.workloads.record import RecordResult, record_trace
from rvi_tui.workloads.registry import RecordError, open_trace

needs_valgrind = pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")


@needs_valgrind
def test_record_true(tmp_path):
    out = tmp_path / "true.lackey.gz"
    progress = []
    result = record_trace(["true"], out, on_progress=lambda n, t: progress.append((n, t)))
    assert isinstance(result, RecordResult) and result.out_path == str(out)
    assert result.records > 1000 and result.seconds > 0
    assert progress and progress[-1][0] == result.records
    assert os.listdir(tmp_path) == [out.name]  # no temporary file left behind
    with gzip.open(out, "rb") as f:
        assert f.readline().startswith(b"==")  # valgrind's banner: the file is lackey's own output
    trace = open_trace(out, ifetch=True)
    assert trace.fmt == "lackey"
    assert sum(len(c) for c in trace.chunks()) >= result.records


@needs_valgrind
@pytest.mark.parametrize("cmd,message", [
    (["false"], "false failed with exit status 1"),
    (["ls", "/no/such/dir"], "ls /no/such/dir failed with exit status 2: ls: cannot access"),
    (["no-such-command-xyz"], "no-such-command-xyz: command not found"),
    ([], "no command to record"),
])
def test_record_failures(tmp_path, cmd, message):
    out = tmp_path / "t.gz"
    with pytest.raises(RecordError) as info:
        record_trace(cmd, out)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
    assert os.listdir(tmp_path) == []


def test_missing_valgrind(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RecordError) as info:
        record_trace(["/bin/true"], tmp_path / "t.gz")
    assert str(info.value) == "valgrind not found: install it (e.g. `apt-get install valgrind`) to record traces"
