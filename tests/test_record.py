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


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_record_refuses_a_target_that_is_not_a_regular_file(tmp_path, kind):
    """`record -o /dev/full` (as root) turned the device into a regular gzip file: a special file or a
    directory is refused before the program runs, and left as it was."""
    target = tmp_path / "target"
    os.mkfifo(target) if kind == "fifo" else target.mkdir()
    with pytest.raises(RecordError) as info:
        record_trace(["true"], target)
    assert str(info.value).startswith(f"{target}: ") and "refusing to replace it" in str(info.value)
    assert (target.is_fifo() if kind == "fifo" else target.is_dir())
    assert sorted(os.listdir(tmp_path)) == ["target"]


@needs_valgrind
def test_record_writes_through_a_symlink_with_the_umask_and_lets_the_program_speak(tmp_path, capfd):
    real = tmp_path / "real.gz"
    link = tmp_path / "link.gz"
    link.symlink_to(real)
    old = os.umask(0o022)
    try:
        record_trace(["echo", "hello from the program"], link)
    finally:
        os.umask(old)
    assert link.is_symlink() and os.readlink(link) == str(real)  # the link stays; its target is written
    assert (os.stat(real).st_mode & 0o777) == 0o644  # as `open` would make it, not 0600
    assert "hello from the program" in capfd.readouterr().out  # the program's own output is not swallowed


@needs_valgrind
def test_ctrl_c_keeps_a_valid_trace_that_says_it_was_cut_short(tmp_path):
    """Ctrl-C during `record` threw everything away: now the records made so far are kept, whole lines only,
    with a last line saying the trace was interrupted, and the trace replays."""
    import signal
    import threading
    import time

    out = tmp_path / "cut.gz"
    seen = []

    def progress(records, seconds):
        seen.append(records)
        if records and len(seen) == 2:  # recording is under way: the user presses Ctrl-C
            threading.Thread(target=lambda: os.kill(os.getpid(), signal.SIGINT)).start()

    start = time.monotonic()
    result = record_trace(["sleep", "30"], out, on_progress=progress)
    assert result.interrupted and result.records > 0 and time.monotonic() - start < 20
    with gzip.open(out, "rt") as f:
        lines = f.read().splitlines()
    assert lines[-1] == f"==rvi-tui== interrupted by Ctrl-C: the trace ends here, after {result.records} records"
    assert sum(1 for line in lines if line[:1] in ("I", " ")) == result.records
    assert sum(len(c) for c in open_trace(out, ifetch=True).chunks()) >= result.records
