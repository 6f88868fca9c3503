"""Record a real program's memory trace with Valgrind's lackey tool.

Lackey writes tens of bytes per access, so its log goes through a FIFO
straight into a gzip stream instead of onto disk; the compressed trace is
written to a temporary file beside the target and renamed over it only when
the program has finished well, or when Ctrl-C stopped it: then the trace
keeps every complete record made so far and ends with a line saying it was
cut short (a ``==`` line, which trace readers skip, as they skip Valgrind's
own). The target must be a regular file or a free name (``atomic``). The
command is an argument list, never a shell string; its output goes where
rvi-tui's goes, its stdin is /dev/null.
"""

from __future__ import annotations

import gzip
import os
import select
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .atomic import atomic_output
from .errors import RecordError

PROGRESS_EVERY = 0.5  # seconds between on_progress calls
_READ = 1 << 20
_RECORD_START = np.array([ord("I"), ord(" ")], dtype=np.uint8)  # a lackey record line starts with one of these


INTERRUPTED_MARK = "==rvi-tui== interrupted by Ctrl-C: the trace ends here, after {records} records\n"
STOP_GRACE = 2.0  # seconds a program has to exit after Ctrl-C before it is killed


@dataclass(frozen=True)
class RecordResult:
    records: int  # lackey records (I/L/S/M lines) written
    seconds: float
    out_path: str
    interrupted: bool = False  # Ctrl-C stopped the program: the trace is cut short (and says so)


class _CtrlC:
    """While active (in the main thread), Ctrl-C sets ``requested`` instead of raising KeyboardInterrupt, so
    the recording can stop the program and keep what it has."""

    def __init__(self):
        self.requested = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


class _RecordCounter:
    """Counts record lines in a byte stream cut at arbitrary points (banner lines start with '=')."""

    def __init__(self):
        self.records = 0
        self._at_line_start = True

    def feed(self, data: bytes) -> None:
        arr = np.frombuffer(data, dtype=np.uint8)
        starts = np.flatnonzero(arr[:-1] == 10) + 1
        firsts = arr[starts]
        if self._at_line_start:
            firsts = np.concatenate((arr[:1], firsts))
        self.records += int(np.isin(firsts, _RECORD_START).sum())
        self._at_line_start = bool(arr[-1] == 10)


def _check_command(cmd: list[str]) -> str:
    """The valgrind executable; RecordError if it or the command cannot be run."""
    if not cmd:
        raise RecordError("no command to record")
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise RecordError("valgrind not found: install it (e.g. `apt-get install valgrind`) to record traces")
    exe = cmd[0]
    if os.sep in exe:
        if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
            raise RecordError(f"{exe}: not an executable file")
    elif shutil.which(exe) is None:
        raise RecordError(f"{exe}: command not found")
    return valgrind


def _last_line(f) -> str:
    f.seek(0)
    lines = [line.strip() for line in f.read()[-4096:].decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line]
    return lines[-1] if lines else ""


def record_trace(cmd: list[str], out_path, *,
                 on_progress: Callable[[int, float], None] | None = None) -> RecordResult:
    """Run ``valgrind --tool=lackey --trace-mem=yes -- CMD...`` and keep its trace, gzip-compressed, at ``out_path``.

    ``on_progress(records_written, elapsed_s)`` is called about twice a second
    and once at the end. Failures raise a one-line RecordError and leave no file.
    """
    cmd = [os.fspath(c) for c in cmd]
    valgrind = _check_command(cmd)
    out_path = os.fspath(out_path)
    start = time.monotonic()
    counter = _RecordCounter()
    with tempfile.TemporaryDirectory(prefix="rvi-record-") as work, tempfile.TemporaryFile(dir=work) as errors:
        fifo = os.path.join(work, "lackey.log")
        os.mkfifo(fifo)
        # non-blocking, so opening does not wait for valgrind (which may fail before it opens the log)
        log = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        proc = None
        try:
            with atomic_output(out_path) as raw, _CtrlC() as ctrl_c:
                with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz:
                    proc = subprocess.Popen(
                        [valgrind, "--tool=lackey", "--trace-mem=yes", f"--log-file={fifo}", "--", *cmd],
                        stdin=subprocess.DEVNULL, stderr=errors)
                    _pump(log, proc, gz, counter, start, on_progress, ctrl_c)
                    status = proc.wait()
                    if ctrl_c.requested and counter.records:
                        gz.write(INTERRUPTED_MARK.format(records=counter.records).encode())
                if ctrl_c.requested and not counter.records:
                    raise RecordError(f"{shlex.join(cmd)}: interrupted before anything was recorded")
                if status != 0 and not ctrl_c.requested:
                    why = _last_line(errors)
                    raise RecordError(f"{shlex.join(cmd)} failed with exit status {status}" + (f": {why}" if why else ""))
                if counter.records == 0:
                    raise RecordError(f"{shlex.join(cmd)}: valgrind recorded no memory accesses")
        except OSError as e:
            if e.filename:
                raise RecordError(f"{e.filename}: {e.strerror or e}") from None
            raise RecordError(f"recording failed: {e.strerror or e}") from None
        finally:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(log)
    seconds = time.monotonic() - start
    if on_progress is not None:
        on_progress(counter.records, seconds)
    return RecordResult(counter.records, seconds, out_path, ctrl_c.requested)


def _pump(log: int, proc: subprocess.Popen, gz, counter: _RecordCounter, start: float,
          on_progress: Callable[[int, float], None] | None, ctrl_c: _CtrlC) -> None:
    """Copy the FIFO into ``gz``, whole lines only, until valgrind has exited and closed it; after Ctrl-C,
    stop the program (killing it if it has not gone in STOP_GRACE seconds) and drop a cut last line."""
    poller = select.poll()
    poller.register(log, select.POLLIN)
    next_report = start + PROGRESS_EVERY
    stop_by = None
    partial = b""  # the start of a line whose end has not come yet
    while True:
        if ctrl_c.requested and proc.poll() is None:
            if stop_by is None:  # the terminal sent SIGINT to the program too; say it again in case it was not
                stop_by = time.monotonic() + STOP_GRACE
                proc.send_signal(signal.SIGINT)
            elif time.monotonic() > stop_by:
                proc.kill()
        exited = proc.poll() is not None  # before the read: an empty read after exit means all is read
        try:
            data = os.read(log, _READ)
        except BlockingIOError:  # the writer is there but has nothing yet
            poller.poll(100)
            data = None
        if data:
            data = partial + data
            cut = data.rfind(b"\n") + 1
            partial = data[cut:]
            if cut:
                gz.write(data[:cut])
                counter.feed(data[:cut])
        elif data == b"":  # no writer: valgrind has not opened the log yet, or has closed it
            if exited:
                if partial and not ctrl_c.requested:  # a last line without a newline, complete
                    gz.write(partial)
                    counter.feed(partial)
                return
            time.sleep(0.01)
        now = time.monotonic()
        if on_progress is not None and now >= next_report:
            on_progress(counter.records, now - start)
            next_report = now + PROGRESS_EVERY
