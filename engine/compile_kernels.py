"""The compiler child: fills one kernel cache folder, once, however many processes ask at the same time.

    python -m rvi_tui.engine.compile_kernels FOLDER          every stage not yet done, each in a process of its own
    python -m rvi_tui.engine.compile_kernels FOLDER STAGE    one stage (run by the line above)

Started by ``hardware.start_compiling`` (and by ``rvi-tui bench --compile`` on a
throwaway folder). The stages come in the order that gets a user to compiled
code soonest: the step build (no inlining: small and quick, and it serves the
batch path too until the next stages are in), then the batch builds, 1D and
2D, all inlined. Each stage runs in its own process, so the memory numba and
LLVM hold for one build is given back before the next (peak RSS is the
largest stage's, not the sum). The first process holds an exclusive lock on
the folder while it works, so a second one waits and then finds the work
done. Each stage writes ``STAGE.json`` (seconds, peak RSS) atomically when its
kernels are in the cache: a reader never sees a stage marked done that is not.
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

MODULE = f"{__package__}.compile_kernels"  # also when run as __main__

try:
    import fcntl
except ImportError:  # not POSIX: no lock; numba writes each cache file atomically anyway
    fcntl = None


def compile_stage(stage: str) -> None:
    """Compile one build by running it: the engine's machines of its modes on its path, and with the step
    build, the trace parsers (lackey and plain text)."""
    from ..workloads.registry import make_workload, open_trace
    from . import hardware
    from .warmup import warm_up

    variant = hardware.STAGE_VARIANTS[stage]
    hardware.serve_only(hardware.load_variant(variant).run_accesses)  # this process compiles in place
    if stage == "step":
        warm_up(batch=False)
        for _ in make_workload("real-ls", accesses=100).chunks():  # the lackey parser
            pass
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "t.txt"
            path.write_text("0x1000\nW 0x2000\nR 3000\n")
            for _ in open_trace(str(path), "text").chunks():
                pass
    else:
        warm_up(("nested",) if variant.walk_2d else ("native", "shadow"), step=False)


def write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def compile_in_child(folder: str) -> tuple[int, int]:
    """Run the compiler child on `folder` and wait: (exit status, its peak RSS in KB)."""
    proc = subprocess.Popen([sys.executable, "-m", MODULE, folder], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss


def run_stage(folder: Path, stage: str) -> int:
    start = time.perf_counter()
    compile_stage(stage)
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    from . import hardware

    write_atomically(hardware.stage_marker(folder, stage), json.dumps({"seconds": round(seconds, 2),
                                                                     "peak_rss_kb": peak_kb}))
    print(f"rvi-tui compiler: {stage} build compiled in {seconds:.1f} s, peak RSS {peak_kb // 1024} MB", flush=True)
    return 0


def main(argv: list[str]) -> int:
    folder = Path(argv[0])
    folder.mkdir(parents=True, exist_ok=True)
    from . import hardware

    hardware.use_cache_dir(folder)  # before anything imports numba
    if len(argv) > 1:
        return run_stage(folder, argv[1])
    with open(folder / hardware.LOCK, "a+") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the process ends, however it ends
        todo = [stage for stage in hardware.STAGES if hardware.stage_record(stage, folder) is None]
        if not todo:
            print(f"rvi-tui compiler: {folder} is complete already", flush=True)
            return 0
        for stage in todo:
            code = subprocess.call([sys.executable, "-m", MODULE, str(folder), stage], stdin=subprocess.DEVNULL)
            if code != 0:
                return code
    print(f"rvi-tui compiler: compiled into {folder}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
