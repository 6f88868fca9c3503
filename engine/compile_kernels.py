"""The compiler child: fills one kernel cache folder, once, however many processes ask at the same time.

    python -m rvi_tui.engine.compile_kernels FOLDER          every stage not yet done, each in a process of its own
    python -m rvi_tui.engine.compile_kernels FOLDER STAGE    one stage (run by the line above)

Started by ``hardware.start_compiling`` (and by ``rvi-tui bench --compile`` on a
throwaway folder). The stages come in the order that gets a user to compiled
code soonest, one a core (at most two at once): the step build (no inlining:
small and quick, and it serves the batch path too until the next stages are
in) beside the longer batch build, 1D, and the batch 2D build on the core the
step build leaves; the compiler runs at a lower priority than the app.
Each stage runs in a process of its own, so the memory numba and LLVM hold
for one build is given back when it ends. The first process holds an
exclusive lock on the folder while it works, so a second one waits and then
finds the work done. Each stage writes ``STAGE.json`` (seconds, peak RSS)
atomically when its kernels are in the cache: a reader never sees a stage
marked done that is not. The first process writes ``compile.json`` at the end:
its wall seconds, and a bound on the peak RSS of all its processes together
(its own peak plus the sum of the largest stage peaks, as many as ran at once).
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
RECORD = "compile.json"

try:
    import fcntl
except ImportError:  # not POSIX: no lock; numba writes each cache file atomically anyway
    fcntl = None


def compile_stage(stage: str) -> None:
    """Compile one build by running it: the engine's machines of its modes on its path, and with the 1D batch
    build (compiled beside the quick step build), the trace parsers (lackey and plain text)."""
    from ..workloads.registry import make_workload, open_trace
    from . import hardware
    from .warmup import warm_up

    variant = hardware.STAGE_VARIANTS[stage]
    hardware.serve_only(hardware.load_variant(variant).run_accesses)  # this process compiles in place
    if stage == "step":
        warm_up(batch=False)
        return
    warm_up(("nested",) if variant.walk_2d else ("native", "shadow"), step=False)
    if not variant.walk_2d:
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
    """Run the compiler child on `folder` and wait: (exit status, the peak RSS in KB of all its processes
    together, as compile.json bounds it)."""
    code, peak_kb = wait_for(subprocess.Popen([sys.executable, "-m", MODULE, folder], stdin=subprocess.DEVNULL,
                                              stdout=subprocess.DEVNULL))
    try:
        peak_kb = json.loads((Path(folder) / RECORD).read_text())["peak_rss_kb"]
    except (OSError, ValueError, KeyError):
        pass  # it compiled nothing, or failed: wait4's figure, the largest of its processes
    return code, peak_kb


def own_peak_rss_kb() -> int:
    """This process's peak RSS in KB: /proc's VmHWM where there is one, as getrusage's maxrss keeps the peak
    of the process that started this one across exec (Linux: a compiler started by a 100 MB app said 100 MB)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def wait_for(proc: subprocess.Popen) -> tuple[int, int]:
    """Wait for a child: (exit status, the largest peak RSS in KB of it and of each process it waited for)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss


def run_stage(folder: Path, stage: str) -> int:
    start = time.perf_counter()
    compile_stage(stage)
    seconds = time.perf_counter() - start
    peak_kb = own_peak_rss_kb()
    from . import hardware

    niceness = os.nice(0) if hasattr(os, "nice") else 0
    write_atomically(hardware.stage_marker(folder, stage), json.dumps({"seconds": round(seconds, 2),
                                                                     "peak_rss_kb": peak_kb, "nice": niceness}))
    print(f"rvi-tui compiler: {stage} build compiled in {seconds:.1f} s, peak RSS {peak_kb // 1024} MB", flush=True)
    return 0


BACKGROUND_NICE = 10  # the compiler yields the CPU to the app that started it: keys answer while it compiles


def yield_the_cpu() -> None:
    """Lower this process's priority (its stages inherit it), so that on a busy machine the app's process, whose
    UI and engine share one GIL, is scheduled first; on an idle core the compile runs as fast as before."""
    try:
        os.nice(BACKGROUND_NICE)
    except (AttributeError, OSError):  # not POSIX, or not allowed: compile at the normal priority
        pass


def usable_cores() -> int:
    """The cores this process may run on (its affinity, where the OS says)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def stages_at_once() -> int:
    """One stage a core, at most two: the step build and the longer batch build start together, and the
    other batch build takes the core the step build leaves (a third at once would only slow the first)."""
    return max(1, min(2, usable_cores()))


def run_stages(folder: Path, todo: list[str], at_once: int) -> list[int] | int:
    """Each stage of `todo` in a process of its own, in order, `at_once` at a time: their peak RSS in KB, or
    the exit status of the first that failed (the others are waited for)."""
    waiting = list(todo)
    running: dict[int, subprocess.Popen] = {}
    peaks: list[int] = []
    failed = 0
    while waiting or running:
        while waiting and len(running) < at_once and not failed:
            stage = waiting.pop(0)
            proc = subprocess.Popen([sys.executable, "-m", MODULE, str(folder), stage], stdin=subprocess.DEVNULL)
            running[proc.pid] = proc
        if not running:
            break
        pid, status, usage = os.wait4(-1, 0)
        proc = running.pop(pid, None)
        if proc is None:  # not a stage (nothing else is started here, but be safe)
            continue
        proc.returncode = os.waitstatus_to_exitcode(status)
        failed = failed or proc.returncode
        peaks.append(usage.ru_maxrss)
    return failed or peaks


def main(argv: list[str]) -> int:
    folder = Path(argv[0])
    folder.mkdir(parents=True, exist_ok=True)
    from . import hardware

    hardware.use_cache_dir(folder)  # before anything imports numba
    if len(argv) > 1:
        return run_stage(folder, argv[1])
    yield_the_cpu()
    with open(folder / hardware.LOCK, "a+") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the process ends, however it ends
        todo = [stage for stage in hardware.STAGES if hardware.stage_record(stage, folder) is None]
        if not todo:
            print(f"rvi-tui compiler: {folder} is complete already", flush=True)
            return 0
        start = time.perf_counter()
        at_once = stages_at_once()
        peaks = run_stages(folder, todo, at_once)
        if isinstance(peaks, int):
            return peaks
        # a bound on what ran at once: the largest peaks, as many as ran side by side
        peak_kb = own_peak_rss_kb() + sum(sorted(peaks, reverse=True)[:at_once])
        write_atomically(folder / RECORD, json.dumps({"seconds": round(time.perf_counter() - start, 2),
                                                       "peak_rss_kb": peak_kb}))
    print(f"rvi-tui compiler: compiled into {folder}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
