"""`rvi-tui serve` started as a user starts it, on a free port of 127.0.0.1, for the serve tests."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid: int) -> bool:
    """Whether process `pid` still runs (a zombie has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(cond, timeout: float, what: str, every: float = 0.05):
    end = time.monotonic() + timeout
    while not (result := cond()):
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)
    return result


class Served:
    """A running `rvi-tui serve ARGS` (stop() interrupts it as Ctrl+C does and checks that every app ended)."""

    def __init__(self, tmp_path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"serve-{self.port}.log"
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "rvi_tui.tui.cli", "serve", "--port", str(self.port),
                                          *args], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_until(lambda: self.get("/links")[0] == 200 or self.proc.poll() is not None, 30, "the server")
        assert self.proc.poll() is None, self.log()

    def log(self) -> str:
        return self.log_path.read_text()

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:
            return 0, ""

    def app_pids(self) -> list[int]:
        """The app processes the server started, in order."""
        return [int(p) for p in re.findall(r"opened .*: app pid (\d+);", self.log())]

    def closed(self, pid: int) -> bool:
        return re.search(rf"closed: app pid {pid} ended", self.log()) is not None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("the server did not stop on SIGINT within 20 s:\n" + self.log())
        left = [pid for pid in self.app_pids() if alive(pid)]
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        assert not left, f"app processes left running after the server stopped: {left}\n{self.log()}"
