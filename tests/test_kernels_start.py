"""Never wait for the compiler: the interpreted start, the switch to compiled code, and the kernel cache.

* the interpreted kernels are the same source files, loaded again with numba's JIT off;
* interpreted, compiled, and a run that switches between them at any call give identical counters;
* the cache folder is keyed by every kernel source (numba keys on the entry point's file alone), falls
  back when a root is not writable, and with none writable the engine still runs, interpreted;
* two compilers started at once on one empty folder: one compiles, the other waits and finds it complete,
  and a third process loads the result without compiling anything.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from rvi_tui.engine import config as C
from rvi_tui.engine import compile_kernels, hardware
from rvi_tui.engine.errors import EngineError
from rvi_tui.engine.session import Session
from rvi_tui.tui import cli
from rvi_tui.workloads.registry import make_workload

CASES = [
    ("kcompile", {"jobs": 4}, {}),
    ("random", {"footprint": 1 << 24, "accesses": 3000}, {"guest.page": "2m", "host.page": "4k"}),
    ("multi", {"accesses": 3000, "procs": 3}, {"guest.levels": 5, "host.levels": 5}),
]


def counters_after(workload, params, overrides, steps: int = 40) -> dict:
    """Step `steps` ops, then run the rest in batches of 97 ops (the `kernels` fixture picks each call's kernel)."""
    session = Session(make_workload(workload, seed=3, **params).chunks(), C.load(overrides=overrides))
    for _ in range(steps):
        session.step()
    while session.run(97):
        pass
    return session.counters()


@pytest.fixture
def kernels(monkeypatch):
    """Pick the implementation for every Machine.run: compiled (the build for its path) or interpreted, as a
    function of the call's number."""
    interpreted = hardware.interpreted_module().run_accesses

    def use(pick):
        calls = itertools.count()
        monkeypatch.setattr(hardware, "run_accesses", lambda record, nested: hardware.compiled_kernel(
            record, nested) if pick(next(calls)) else interpreted)

    return use


def test_the_interpreted_kernels_are_the_same_source_run_as_python():
    module = hardware.interpreted_module()
    assert Path(module.__file__) == hardware.ENGINE_DIR / "kernel.py"
    walk = sys.modules[f"{module.__package__}.walk"]
    assert Path(walk.__file__) == hardware.ENGINE_DIR / "walk.py"
    for fn in (module.run_accesses, module.access, walk.walk_2d):
        assert type(fn).__name__ == "function", f"{fn} is not plain Python"
    for key in hardware.KEYS:
        assert type(hardware.compiled_kernel(*key)).__name__ != "function"


def test_only_the_entry_point_is_compiled_on_its_own():
    """Every other routine is compiled only inside run_accesses (numba's register_jitable: no wrappers, no
    compile per literal argument), where the batch builds have LLVM inline it (forceinline): a routine made
    an @njit function of its own would compile again for each constant argument and be a call."""
    from numba.core.registry import CPUDispatcher

    for variant in (hardware.STEP, hardware.BATCH_1D, hardware.BATCH_2D):
        package = hardware.load_variant(variant).__package__
        assert sys.modules[f"{package}.routine"].INLINE is variant.inline
        compiled = {f"{name}.{fn}" for name in ("kernel", "walk", "setassoc")
                    for fn, obj in vars(sys.modules[f"{package}.{name}"]).items() if isinstance(obj, CPUDispatcher)}
        assert compiled == {"kernel.run_accesses"}


def test_each_build_holds_what_its_path_needs():
    """The step build records events; the batch builds are one per walk dimension and record none."""
    step = hardware.load_variant(hardware.STEP)
    assert sys.modules[f"{step.__package__}.build"].RECORD_EVENTS
    for variant, two_d in ((hardware.BATCH_1D, False), (hardware.BATCH_2D, True)):
        build = sys.modules[f"{hardware.load_variant(variant).__package__}.build"]
        assert (build.RECORD_EVENTS, build.WALK_1D, build.WALK_2D) == (False, not two_d, two_d)
    assert hardware.compiled_kernel(False, True) is not hardware.compiled_kernel(False, False)
    assert hardware.compiled_kernel(True, True) is hardware.compiled_kernel(True, False)


@pytest.mark.parametrize("workload,params,overrides", CASES)
def test_interpreted_compiled_and_switching_give_the_same_counters(kernels, workload, params, overrides):
    kernels(lambda call: True)
    compiled = counters_after(workload, params, overrides)
    kernels(lambda call: False)
    assert counters_after(workload, params, overrides) == compiled
    kernels(lambda call: call >= 60)  # interpreted first, then compiled from a call on: the app's switch
    assert counters_after(workload, params, overrides) == compiled
    kernels(lambda call: call % 3 == 1)  # back and forth on every call
    assert counters_after(workload, params, overrides) == compiled


def test_a_users_numba_cache_dir_is_the_root_and_started_processes_find_the_same_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("RVI_TUI_CACHE_DIR", raising=False)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))
    import numba

    monkeypatch.setattr(numba.config, "CACHE_DIR", numba.config.CACHE_DIR)  # restored after the test
    _fresh_cache_state(monkeypatch)
    hardware.configure()
    folder = tmp_path / "numba" / f"kernels-{hardware.cache_key()}"
    assert hardware.cache_dir() == folder
    assert os.environ["NUMBA_CACHE_DIR"] == str(folder)  # what numba reads
    assert os.environ["RVI_TUI_CACHE_DIR"] == str(folder.parent)  # what a started process reads first
    _fresh_cache_state(monkeypatch)
    assert hardware.cache_dir() == folder


def test_the_cache_folder_is_keyed_by_every_kernel_source_and_where_it_is(monkeypatch, tmp_path):
    names = {p.name for p in hardware.kernel_sources()}
    assert {"kernel.py", "walk.py", "setassoc.py", "layout.py"} <= names
    copies = []
    for path in hardware.kernel_sources():
        copy = tmp_path / path.name
        copy.write_bytes(path.read_bytes())
        copies.append(copy)
    monkeypatch.setattr(hardware, "kernel_sources", lambda: copies)
    monkeypatch.setattr(hardware, "cache_key", hardware.cache_key.__wrapped__)  # not the cached answer
    before = hardware.cache_key()
    walk = tmp_path / "walk.py"
    walk.write_text(walk.read_text() + "\n# an edit to an inlined module\n")
    assert hardware.cache_key() != before
    edited = hardware.cache_key()
    monkeypatch.setattr(hardware, "ENGINE_DIR", tmp_path)  # the same files installed elsewhere
    assert hardware.cache_key() != edited, "numba files its cache by source path: one folder per install"
    moved = hardware.cache_key()
    monkeypatch.setitem(hardware.STAGE_VARIANTS, "step", dataclasses.replace(hardware.STEP, inline=True))
    assert hardware.cache_key() != moved, "the same source built otherwise is other machine code"


def _fresh_cache_state(monkeypatch):
    for name, value in (("_cache_dir", None), ("_cache_error", None), ("_compiled", None), ("_child", None),
                        ("_child_error", None), ("_last_poll", 0.0), ("_full", False), ("_adopted", frozenset())):
        monkeypatch.setattr(hardware, name, value)


def test_an_unwritable_cache_root_falls_back_to_the_next(monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("RVI_TUI_CACHE_DIR", str(blocker / "cache"))  # under a regular file: cannot be made
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    _fresh_cache_state(monkeypatch)
    folder = hardware.cache_dir()
    assert folder is not None and folder.parent == tmp_path / "xdg" / "rvi-tui"
    assert folder.name == f"kernels-{hardware.cache_key()}"


def test_with_no_writable_cache_the_engine_runs_interpreted_and_says_why(monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(hardware, "cache_roots", lambda: [blocker / "a", blocker / "b"])
    monkeypatch.setenv("RVI_TUI_KERNELS", "auto")
    _fresh_cache_state(monkeypatch)
    assert hardware.cache_dir() is None
    assert hardware.run_accesses(False, True) is hardware.interpreted_module().run_accesses
    assert "RVI_TUI_CACHE_DIR" in hardware.status().describe()
    with pytest.raises(EngineError, match="cannot compile"):
        hardware.require_compiled()


def test_a_bad_kernel_choice_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("RVI_TUI_KERNELS", "fast")
    with pytest.raises(EngineError, match="RVI_TUI_KERNELS='fast': must be one of auto, compiled, interpreted"):
        hardware.choice()


def test_two_compilers_at_once_compile_once_and_leave_a_cache_that_loads_without_compiling(tmp_path):
    """The costliest test here (one cold compile): two children race on one empty folder."""
    folder = tmp_path / "kernels"
    env = {k: v for k, v in os.environ.items() if k != "RVI_TUI_KERNELS"}
    cmd = [sys.executable, "-m", "rvi_tui.engine.compile_kernels", str(folder)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
             for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    said = sorted("compiled into" in out for out in outputs)  # the other: "complete already"
    assert said == [False, True], f"exactly one child compiles: {outputs}"
    assert any("complete already" in out for out in outputs)
    records = hardware.cache_complete(folder)
    assert records is not None and set(records) == set(hardware.STAGES)
    assert all(r["seconds"] > 0 and r["peak_rss_kb"] > 0 for r in records.values())
    # the compiler yields the CPU to the app that started it (keys answer while it compiles)
    expected_nice = min(19, os.nice(0) + compile_kernels.BACKGROUND_NICE)
    assert {r["nice"] for r in records.values()} == {expected_nice}
    together = json.loads((folder / compile_kernels.RECORD).read_text())["peak_rss_kb"]
    assert together > records["batch1d"]["peak_rss_kb"] + records["batch2d"]["peak_rss_kb"], "they run at once"
    probe = ("import sys; from pathlib import Path; from rvi_tui.engine import hardware;"
             "hardware.use_cache_dir(Path(sys.argv[1]));"
             "from rvi_tui.engine.warmup import warm_up; warm_up();"
             "stats = [hardware.compiled_kernel(*key).stats for key in hardware.KEYS];"
             "print(sum(sum(s.cache_hits.values()) for s in stats), sum(sum(s.cache_misses.values()) for s in stats))")
    done = subprocess.run([sys.executable, "-c", probe, str(folder)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    hits, misses = map(int, done.stdout.split())
    assert hits >= 1 and misses == 0, "the cache a compiler left must load without compiling"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="VmHWM is Linux's")
def test_a_compilers_peak_rss_is_its_own_not_that_of_the_process_that_started_it():
    """Linux carries getrusage's maxrss across exec: a compiler started by a large process reported that
    process's peak as its own."""
    ballast = bytearray(300 << 20)
    ballast[::4096] = b"x" * len(ballast[::4096])  # touched, so resident
    probe = ("import resource; from rvi_tui.engine.compile_kernels import own_peak_rss_kb;"
             "print(own_peak_rss_kb(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    own, inherited = map(int, done.stdout.split())
    assert inherited > 300 << 10, "getrusage still says the starter's peak (else this test shows nothing)"
    assert own < 150 << 10
    del ballast


def test_bench_compile_reports_seconds_and_peak_rss(monkeypatch, capsys):
    """The measurement's plumbing (the compiler itself is exercised by the tests above)."""
    seen = []

    def fake_child(folder):
        seen.append(folder)
        Path(folder).mkdir(parents=True)
        for i, stage in enumerate(hardware.STAGES):
            compile_kernels.write_atomically(hardware.stage_marker(Path(folder), stage),
                                             json.dumps({"seconds": 1.5 + i, "peak_rss_kb": (256 << i) * 1024}))
        threading.Event().wait(0.01)
        return 0, 1024 * 1024

    monkeypatch.setattr(compile_kernels, "compile_in_child", fake_child)
    assert cli.main(["bench", "--compile", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["compile_peak_rss_mb"] == 1024.0 and result["compile_seconds"] > 0
    assert result["stages"]["step"] == {"seconds": 1.5, "peak_rss_mb": 256.0}
    assert result["stages"]["batch2d"] == {"seconds": 3.5, "peak_rss_mb": 1024.0}
    assert seen and not Path(seen[0]).exists(), "the throwaway cache is removed"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to find the compiler's processes")
def test_stop_compiling_ends_the_compiler_and_its_stages(tmp_path):
    """`bench --cold` compiles into a throwaway folder; its compiler, left running after the measurement, loaded
    the machine for the next one."""
    folder = tmp_path / "kernels"
    probe = ("import sys, time; from pathlib import Path; from rvi_tui.engine import hardware;"
             "hardware.use_cache_dir(Path(sys.argv[1])); hardware.start_compiling();"
             "deadline = time.monotonic() + 60\n"
             "while not list(Path(sys.argv[1]).glob('*.log')) and time.monotonic() < deadline: time.sleep(0.1)\n"
             "time.sleep(3); assert hardware.status().compiling; hardware.stop_compiling(); print('stopped')")
    env = {k: v for k, v in os.environ.items() if k not in ("RVI_TUI_KERNELS", "RVI_TUI_CACHE_DIR")}
    done = subprocess.run([sys.executable, "-c", probe, str(folder)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0 and "stopped" in done.stdout, done.stderr

    def compilers() -> list[str]:
        found = []
        for proc in Path("/proc").iterdir():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "compile_kernels" in cmdline and str(folder) in cmdline:
                found.append(cmdline)
        return found

    import time

    deadline = time.monotonic() + 10  # a stage may take a moment to see its SIGTERM
    while compilers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert compilers() == []
