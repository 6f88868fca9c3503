"""The compiler child: fills one kernel cache folder, once, however many processes ask at the same time.

    python -m rvi_tui.engine.compile_kernels FOLDER

Run by ``hardware.start_compiling`` (and by ``rvi-tui bench --compile`` on a
throwaway folder). It holds an exclusive lock on the folder while it compiles,
so a second child waits and then finds the work done. Once every kernel is in
the cache it writes ``complete.json`` (seconds, peak RSS) atomically: a reader
never sees a cache marked complete that is not.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: no lock; numba writes each cache file atomically anyway
    fcntl = None


def compile_everything() -> None:
    """Every specialisation the app, report and study run: the engine kernels in step and batch for all
    modes (warm_up), and the trace parsers (lackey and plain text)."""
    from ..workloads.registry import make_workload, open_trace
    from . import hardware
    from .warmup import warm_up

    hardware._load_compiled()  # this process compiles in place: it is the child
    warm_up()
    for _ in make_workload("real-ls", accesses=100).chunks():  # the lackey parser
        pass
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.txt"
        path.write_text("0x1000\nW 0x2000\nR 3000\n")
        for _ in open_trace(str(path), "text").chunks():
            pass


def write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def compile_in_child(folder: str) -> tuple[int, int]:
    """Run the compiler child on `folder` and wait: (exit status, its peak RSS in KB)."""
    proc = subprocess.Popen([sys.executable, "-m", __name__, folder], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss


def main(argv: list[str]) -> int:
    folder = Path(argv[0])
    folder.mkdir(parents=True, exist_ok=True)
    from . import hardware

    hardware.use_cache_dir(folder)  # before anything imports numba

    with open(folder / hardware.LOCK, "a+") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the process ends, however it ends
        if hardware.cache_complete(folder) is not None:
            print(f"rvi-tui compiler: {folder} is complete already", flush=True)
            return 0
        start = time.perf_counter()
        compile_everything()
        seconds = time.perf_counter() - start
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        write_atomically(folder / hardware.COMPLETE, json.dumps({"seconds": round(seconds, 2), "peak_rss_kb": peak_kb}))
        print(f"rvi-tui compiler: compiled into {folder} in {seconds:.1f} s, peak RSS {peak_kb // 1024} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
