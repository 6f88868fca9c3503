"""A workload's length for a progress bar, counted where it does not slow the run.

Most workloads know their length at once: a synthetic stream's accesses, and
a trace once it has been read. An OS workload (kcompile, webserver,
mmapchurn) learns its length only by generating its whole stream. For
kcompile's default that is a second of Python. Counted in a thread of the
run's own process, it held the GIL against the run: `rvi-tui report -w
kcompile --mode all` took 1.0–1.5 s longer on a terminal (which shows the bar)
than piped.

Such a workload is counted in a child process at nice +10 instead. It takes
the core the run leaves, or, on one core, the time the run does not want.
The child stops when it is closed, and also once its parent is gone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable

from .base import Workload
from .child_stream import read_workload, start_child


class OpCount:
    """The length of `workload`, once known (``get``), counted in the background from the first ``get`` or
    ``start``; ``on_count(n)`` is called from the counting thread when it is."""

    def __init__(self, workload: Workload, on_count: Callable[[int], None] | None = None):
        self.workload = workload
        self.on_count = on_count
        self._n: int | None = None
        self._lock = threading.Lock()
        self._started = False
        self._closed = False
        self._child: subprocess.Popen | None = None

    def start(self) -> None:
        with self._lock:
            if self._started or self._closed:
                return
            self._started = True
        threading.Thread(target=self._count, name="rvi-count", daemon=True).start()

    def get(self) -> int | None:
        self.start()
        return self._n

    def close(self) -> None:
        """Stop counting (the run is over, or another replaced it)."""
        with self._lock:
            self._closed = True
            child = self._child
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()

    def _count(self) -> None:
        try:
            n = self._in_child() if self.workload.counts_by_generating else self.workload.n_ops
        except Exception:  # the run itself reports a bad stream; a count is only a nicety
            return
        if n is None or self._closed:
            return
        self._n = int(n)
        if self.on_count is not None:
            self.on_count(self._n)

    def _in_child(self) -> int | None:
        with self._lock:
            if self._closed:
                return None
            self._child = start_child(__name__, self.workload, str(os.getpid()), stderr=subprocess.DEVNULL)
        out = self._child.stdout.read()
        self._child.stdout.close()
        return int(out) if self._child.wait() == 0 and out.strip() else None


def main(parent: int) -> int:
    """The child of process `parent`: the pickled workload on stdin, its length on stdout."""
    if hasattr(os, "nice"):
        os.nice(10)
    workload = read_workload()
    n = 0
    for chunk in workload.chunks():
        n += len(chunk)
        if os.getppid() != parent:  # the run is gone: nobody wants the count
            return 1
    print(n)
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
