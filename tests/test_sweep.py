"""Sweeps: a grid of cells run serially, in local workers and on a real Dask LocalCluster with the same rows;
results files, resume, a failing cell, Ctrl-C, bad axes, charts, and the missing extras."""

from __future__ import annotations

import csv
import gc
import io
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

from rvi_tui.engine import executors, sweep
from rvi_tui.tui.cli import main

SMALL = [("kcompile", (("jobs", "3"),)), ("random", (("footprint", "2m"), ("accesses", "3000")))]


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def small_grid(**kw):
    return sweep.build_grid(SMALL, sweeps=sweep.parse_sweep(["guest.page=4k,2m"]), **kw)


def comparable(results):
    """Each cell's rows without the wall-clock seconds: what must be equal wherever a cell runs."""
    return {r["key"]: [{k: v for k, v in row.items()} for row in r["rows"]] for r in results}


@pytest.fixture(scope="module")
def serial_results():
    return list(executors.run_serial(small_grid().cells))


def test_the_grid_is_sources_times_swept_values_times_seeds():
    grid = sweep.build_grid(SMALL, sweeps=sweep.parse_sweep(["guest.page=4k,2m", "preset=modern,barcelona-2008"]),
                            seeds=3)
    assert len(grid.cells) == 2 * 2 * 2 * 3 and grid.swept == ("guest.page", "preset")
    assert len({c.key for c in grid.cells}) == len(grid.cells)
    default = sweep.build_grid()
    assert len(default.cells) == 8 and default.swept == ("pages",)  # the VMware table: 4 workloads x 2 pairs


def test_local_workers_give_the_serial_rows(serial_results):
    local = list(executors.run_local(small_grid().cells, jobs=2))
    assert comparable(local) == comparable(serial_results)
    assert all(not r["error"] and len(r["rows"]) == 3 for r in serial_results)


def test_a_dask_local_cluster_gives_the_serial_rows(serial_results):
    pytest.importorskip("distributed")
    environ = dict(os.environ)
    with executors.local_cluster(2) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        remote = list(executors.run_dask(small_grid().cells, cluster.scheduler_address))
    assert comparable(remote) == comparable(serial_results)
    assert dict(os.environ) == environ  # no Nanny's MALLOC_TRIM_THRESHOLD_ left for later processes to inherit


def test_a_worker_keeps_no_machine_of_the_cells_it_has_run():
    """A cell's machines sit in reference cycles; a worker that kept them until a full collection came grew by
    hundreds of MB a cell."""
    from rvi_tui.engine.machine import Machine

    def machines() -> int:
        return sum(isinstance(o, Machine) for o in gc.get_objects())

    gc.collect()
    before = machines()
    assert all(not r["error"] for r in executors.run_serial(small_grid().cells[:2]))
    assert machines() <= before


def test_a_cell_takes_no_more_page_faults_in_a_process_started_as_dask_starts_its_workers():
    """A Dask Nanny starts its workers with MALLOC_TRIM_THRESHOLD_=65536, at which glibc gives the top of the heap
    back at nearly every free: this cell took 16x the page faults there (and a long cell a quarter more CPU)."""
    script = ("import resource; from rvi_tui.engine import sweep; "
              "cell = sweep.build_grid([('kcompile', (('jobs', '20'),))]).cells[1]; sweep.run_cell(cell); "
              "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt; sweep.run_cell(cell); "
              "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)")
    plain = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
             for env in (plain, {**plain, "MALLOC_TRIM_THRESHOLD_": "65536"})]
    faults_plain, faults_as_dask = (int(p.communicate(timeout=120)[0]) for p in procs)
    assert faults_as_dask < 2 * faults_plain


def test_a_trace_travels_by_content_when_the_worker_lacks_the_path(tmp_path, monkeypatch):
    trace = tmp_path / "t.txt"
    trace.write_text("".join(f"{0x10000 + 4096 * i:#x}\n" for i in range(200)))
    cell = sweep.build_grid(traces=[str(trace)], sweeps=sweep.parse_sweep(["guest.page=4k"])).cells[0]
    here = sweep.run_cell(cell)
    moved = sweep.Cell(**{**cell.__dict__, "trace": str(tmp_path / "elsewhere" / "t.txt")})
    with pytest.raises(sweep.TraceMissing):
        sweep.run_cell(moved)
    monkeypatch.setattr(sweep, "_trace_dir", lambda: str(tmp_path))
    sent = sweep.run_cell(moved, trace.read_bytes())
    assert sent["rows"] == here["rows"] and not sent["error"]


def test_results_files_resume_and_a_failing_cell(tmp_path, monkeypatch):
    out = tmp_path / "r.csv"
    code, table, err = run("study", "--workloads", "kcompile:jobs=3", "--sweep", "guest.page=4k", "-j", "1",
                           "-o", str(out))
    assert code == 0 and "kcompile" in table
    rows = list(csv.DictReader(out.open()))
    assert [r["mode"] for r in rows] == ["native", "shadow", "nested"]
    assert {"cell", "command", "guest.page", "cycles_per_access", "tlb.misses", "exits.total"} <= set(rows[0])
    # --resume with one more value runs only the new cell
    ran = []
    real = sweep.run_cell
    monkeypatch.setattr(sweep, "run_cell", lambda cell, *a: ran.append(cell) or real(cell, *a))
    monkeypatch.setattr(executors, "run_cell", sweep.run_cell)
    code, _, _ = run("study", "--workloads", "kcompile:jobs=3", "--sweep", "guest.page=4k,2m", "-j", "1",
                     "-o", str(out), "--resume")
    assert code == 0 and [c.sets for c in ran] == [("guest.page=2m",)]
    assert len(list(csv.DictReader(out.open()))) == 6
    # a cell that fails is reported and the others go on
    bad = tmp_path / "bad.txt"
    bad.write_text("0x1000\nnot an address\n")
    code, table, err = run("study", "--workloads", "kcompile:jobs=3", "--trace", str(bad), "--sweep",
                           "guest.page=4k", "-j", "1", "-o", str(tmp_path / "f.json"))
    assert code == 1 and "1 cell failed" in err and "failed" in table and "kcompile" in table
    cells = json.loads((tmp_path / "f.json").read_text())["cells"]
    assert [bool(c["error"]) for c in cells] == [False, True] and "bad.txt:2:" in cells[1]["error"]


@pytest.mark.parametrize("argv,message", [
    (["--sweep", "tlb.l2.entries=100"], "multiple of tlb.l2.ways"),
    (["--sweep", "nosuch.key=1"], "unknown config key 'nosuch.key'"),
    (["--sweep", "guest.page"], "--sweep expects KEY=V1,V2"),
    (["--sweep", "preset=nosuch"], "unknown preset 'nosuch'"),
    (["--workloads", "nosuch"], "nosuch"),
    (["--workloads", "kcompile:jobs=abc"], "jobs"),
    (["--resume"], "--resume needs -o"),
    (["--plot", "chart.gif"], "give a .svg or .png file"),
])
def test_bad_axes_are_one_line_errors(argv, message):
    code, _, err = run("study", *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_the_chart_is_a_valid_svg_with_a_bar_per_group_and_mode(tmp_path, serial_results):
    from rvi_tui.tui import charts

    path = tmp_path / "c.svg"
    grid = sweep.build_grid(SMALL)  # pages 4k/4k and 2m/2m: 2 workloads x 2 pairs = 4 groups
    results = list(executors.run_serial(grid.cells))
    charts.save(str(path), results, grid.swept, "preset modern, seed 1")
    root = ET.parse(path).getroot()
    bars = [e for e in root.iter() if e.get("id", "").startswith("bar-")]
    assert len(bars) == 4 * 2
    text = path.read_text()
    assert "overhead vs native (%)" in text and "preset modern, seed 1" in text
    assert "shadow" in str(charts.terminal_bars(results, grid.swept)) and "█" in str(charts.terminal_bars(results, grid.swept))


def test_missing_extras_say_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, _, err = run("study", "--plot", "x.svg")
    assert code == 2 and "pip install 'rvi-tui[plot]'" in err
    monkeypatch.setitem(sys.modules, "distributed", None)
    code, _, err = run("study", "--workloads", "kcompile:jobs=3", "--scheduler", "tcp://127.0.0.1:1")
    assert code == 2 and "pip install 'rvi-tui[cluster]'" in err


def _as_from_a_terminal() -> None:
    """In the child before exec: Ctrl-C's default action, as a program started from a terminal has. A test run
    started in the background (`nohup … &`) ignores SIGINT, and a program inherits that: Python then installs
    no KeyboardInterrupt handler, and the study would run on to its end."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_the_workers_and_keeps_finished_cells(tmp_path):
    out = tmp_path / "r.json"
    proc = subprocess.Popen([sys.executable, "-m", "rvi_tui.tui.cli", "study", "--workloads", "kcompile:jobs=4",
                             "--seeds", "400", "--sweep", "guest.page=4k", "-j", "2", "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_as_from_a_terminal)
    deadline = time.monotonic() + 120
    while not out.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert out.exists(), proc.stderr.read() if proc.poll() is not None else "no cell finished in 120 s"
    workers = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert workers  # the pool is running
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()  # a study that went on is not left running
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, (proc.returncode, err)
    kept = json.loads(out.read_text())["cells"]
    assert 1 <= len(kept) < 400 and all(not c["error"] for c in kept)
    time.sleep(0.5)
    alive = [pid for pid in workers if os.path.exists(f"/proc/{pid}") and
             "zombie" not in open(f"/proc/{pid}/status").read().lower()]
    assert alive == []
