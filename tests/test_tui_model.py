"""The TUI's pure parts, without a screen: walk grids, event lines, formatting, exports, the runner."""

from __future__ import annotations

import json
import os
import sys
import threading
import time

import pytest

from rvi_tui.engine import config as C
from rvi_tui.engine import events as ev
from rvi_tui.engine.session import Session
from rvi_tui.tui import fmt
from rvi_tui.tui.eventlog import KINDS, op_lines
from rvi_tui.tui.export import atomic_write, counters_document, export_names, write_export
from rvi_tui.tui.runner import ERROR, FINISHED, PAUSED, RUNNING, SPEEDS, Runner, RunSpec, speed_label
from rvi_tui.tui.stats import CounterHistory, delta
from rvi_tui.tui.walks import build_view, costs_of, split_walks, tlb_marks, walk_cycles
from rvi_tui.workloads.registry import make_workload

MODES = ("native", "shadow", "nested")


def ref(row, col, served="DRAM", dim="nested"):
    return ev.WalkRef(dim, row, col, 0x1000 + 8 * row + col, served, 0x1007)


# --- walks ------------------------------------------------------------------------------------------

def test_split_walks_separates_faulted_attempts_from_the_completed_one():
    events = [
        ev.TlbLookup("L1 4K", False, -1, -1, 5, 0), ev.TlbLookup("L2", False, -1, -1, 5, 0),
        ref(4, 4), ev.HwFault("npf", 0, 4, False, False), ev.Exit("npf", 2720, ""),
        ref(4, 4, "L1D"), ref(4, 0, "DRAM", "guest"), ev.HwFault("guest-fault", 0x5000, 4, False, False),
        ev.GuestFault(0x5000, False, "demand"),
        ev.WalkSkip("guest", 4, 0, "PWC L4"), ref(3, 1, "L1D"), ref(3, 0, "L2$", "guest"),
        ev.TlbFill("L2", 3, 1, 5, 0, -1), ev.Translated(0x9000, 0, "walk"),
    ]
    attempts = split_walks(events)
    assert [a.fault.kind if a.fault else None for a in attempts] == ["npf", "guest-fault", None]
    assert [a.refs for a in attempts] == [1, 2, 2]
    view = build_view("nested", events, 7, "R 0x5000", 4, 4, costs_of(C.load()), vaddr=0x5000)
    assert view is not None and view.two_d and view.op_index == 7 and view.vaddr == 0x5000
    assert [f.kind for f in view.faulted] == ["npf", "guest-fault"]
    assert view.refs == 2
    assert view.cells[(3, 1)].num == 1 and view.cells[(3, 0)].num == 2  # numbered in walk order
    assert view.cells[(4, 0)].kind == "skip" and view.cells[(4, 0)].by == "PWC L4"
    assert all(view.cells[(4, c)].kind == "implied" for c in (4, 3, 2, 1))  # the PWC made the row moot
    assert view.result.paddr == 0x9000
    assert view.rows == (4, 3, 2, 1, 0) and view.cols == (4, 3, 2, 1, 0)


def test_an_ntlb_hit_marks_the_whole_nested_row_and_2m_host_pages_drop_nl1():
    events = [ev.WalkSkip("nested", 2, 0, "NTLB"), ref(2, 0, "L1D", "guest"), ev.Translated(0, 0, "walk")]
    view = build_view("nested", events, 1, "", 4, 4, costs_of(C.load()), hleaf=2)
    assert view.cols == (4, 3, 2, 0)
    assert [view.cells[(2, c)].by for c in (4, 3, 2)] == ["NTLB"] * 3
    assert (2, 1) not in view.cells


def test_one_dimensional_walks_use_one_column():
    events = [ev.WalkSkip("guest", 4, 0, "PWC L3"), ev.WalkSkip("guest", 3, 0, "PWC L3"),
              ref(2, 0, "L1D", "guest"), ref(1, 0, "DRAM", "guest"), ev.Translated(0x1234, 0, "walk")]
    view = build_view("native", events, 3, "", 4, 4, costs_of(C.load()))
    assert not view.two_d and view.cols == (0,) and view.rows == (4, 3, 2, 1)
    assert view.served == {"L1D": 1, "DRAM": 1} and view.skipped == {"PWC": 2}


def test_the_walk_grid_and_the_event_log_count_saved_references_alike():
    """The grid said `10 saved: PWC 3 NTLB 4 NWC 3` (cells) and the log `saved PWC 3 NTLB 1 NWC 3` (hits) for
    one walk. Both now count references saved, and a walk's references plus those saved are its cold walk's."""
    events = [ev.WalkSkip("guest", 4, 0, "PWC L3"), ev.WalkSkip("guest", 3, 0, "PWC L3"),  # rows 4, 3: 2 x (1 + 4)
              ev.WalkSkip("nested", 2, 4, "NWC L4"), ev.WalkSkip("nested", 2, 3, "NWC L3"),  # row 2: 2 saved
              ref(2, 2, "L1D"), ref(2, 1, "L1D"), ref(2, 0, "L2$", "guest"),
              ev.WalkSkip("nested", 1, 0, "NTLB"), ref(1, 0, "DRAM", "guest"),  # row 1: 4 saved
              ref(0, 4), ref(0, 3), ref(0, 2), ev.WalkSkip("nested", 0, 1, "NWC L1"),  # data row: 1 saved
              ev.Translated(0x9000, 0, "walk")]
    view = build_view("nested", events, 5, "R 0x5000", 4, 4, costs_of(C.load()), vaddr=0x5000)
    assert view.skipped == {"PWC": 10, "NWC": 3, "NTLB": 4}
    assert view.refs + sum(view.skipped.values()) == 4 * 4 + 4 + 4  # n*m + n + m
    walk = next(line.text for line in op_lines(5, "R 0x5000", events, nested_walk=4) if "WALK" in line.text)
    assert walk.endswith("saved PWC 10 NWC 3 NTLB 4")
    native = [ev.WalkSkip("guest", 4, 0, "PWC L3"), ev.WalkSkip("guest", 3, 0, "PWC L3"), ref(2, 0, "L1D", "guest"),
              ref(1, 0, "L1D", "guest"), ev.Translated(0x9000, 0, "walk")]
    assert build_view("native", native, 1, "", 4, 4, {}).skipped == {"PWC": 2}
    assert next(line.text for line in op_lines(1, "", native) if "WALK" in line.text).endswith("saved PWC 2")


def test_a_hit_has_no_walk_and_marks_the_tlb_entry():
    events = [ev.TlbLookup("L1 4K", True, 0, 7, 5, 0), ev.Translated(0x5000, 0, "L1")]
    assert build_view("nested", events, 1, "", 4, 4, {}) is None
    assert tlb_marks(events) == {("L1 4K", 0, 7): "hit"}
    fill = [ev.TlbFill("L2", 3, 1, 5, 0, 0x99), ev.TlbFill("L1 4K", 0, 2, 5, 0, -1)]
    assert tlb_marks(fill) == {("L2", 3, 1): "evict", ("L1 4K", 0, 2): "fill"}


@pytest.mark.parametrize("preset", ["modern", "barcelona-2008"])
def test_walk_cycles_match_the_engines_walk_cycle_counter(preset):
    """For ops with exactly one completed walk, the grid's cycle figure is the engine's."""
    config = C.load(preset=preset)
    costs = costs_of(config)
    session = Session(make_workload("kcompile", jobs=3).chunks(), config)
    checked = {m: 0 for m in MODES}
    before = session.counters()
    for _ in range(8000):
        events = session.step()
        if events is None:
            break
        after = session.counters()
        for mode, evs in events.items():
            attempts = split_walks(evs)
            if len(attempts) == 1 and attempts[0].fault is None:
                spent = after[mode]["cyc_walk"] - before[mode]["cyc_walk"]
                assert walk_cycles(attempts[0], costs) == spent, (mode, evs)
                checked[mode] += 1
        before = after
    assert all(n > 30 for n in checked.values()), checked


# --- event lines ------------------------------------------------------------------------------------

def test_op_lines_tag_every_line_and_keep_walk_attempts():
    events = [ev.TlbLookup("L1 4K", False, -1, -1, 5, 0), ev.TlbLookup("L2", False, -1, -1, 5, 0),
              ref(4, 4), ev.HwFault("npf", 0x2000, 4, False, False),
              ev.Exit("npf", 2720, "gPA 0x2000 -> hPA 0x9000"),
              ev.TlbLookup("L1 4K", False, -1, -1, 5, 0), ref(4, 4, "L1D"), ev.TlbFill("L1 4K", 0, 3, 5, 0, 0x7),
              ev.Translated(0x9123, 0, "walk"), ev.ShadowSync("fill", 0x5123, 0x42, 1), ev.Flush("invlpg", 0x5000),
              ev.OsOp("mmap 0x1000+0x2000 (pid 1)")]
    lines = op_lines(12, "R 0x5123 (pid 1)", events, sampled_gap=100)
    kinds = [line.kind for line in lines]
    assert set(kinds) <= set(KINDS)
    text = "\n".join(line.text for line in lines)
    assert "100 ops run in batch" in text and "op #12" in text
    assert "WALK  #1 FAULT" in text and "WALK  #2 done" in text
    assert "#PF   nested page fault at L4: gPA 0x2000 not present" in text
    assert "EXIT  npf (2,720 cycles)" in text
    assert "evicting 0x7" in text and "SYNC  fill gVA 0x5123" in text and "FLUSH invlpg 0x5000" in text
    assert "OS    mmap" in text


# --- formatting -------------------------------------------------------------------------------------

def test_number_formats_fit_their_columns():
    assert fmt.count(99_999) == "99,999" and fmt.count(100_000) == "100.0k" and fmt.count(12_345_678) == "12.3M"
    for n in (0, 7, 99_999, 123_456, 9_999_999, 12_345_678_901):
        assert len(fmt.count(n)) <= 6
    assert fmt.ratio(1082.4) == "1,082" and fmt.ratio(12.34) == "12.3"
    assert fmt.percent(0.0312) == "3.1%" and fmt.percent(1.0, short=True) == "100%"
    assert fmt.signed_percent(9.171) == "+917%" and fmt.signed_percent(0.054) == "+5.4%"
    assert fmt.signed_percent(None) == "—"
    assert fmt.rate(None) == "" and fmt.rate(35_200) == "35.2k" and fmt.rate(3.2) == "3.2"
    line = fmt.sparkline([1, 10, 100, 1000], 1, 1000)
    assert line[0] == "▁" and line[-1] == "█" and len(line) == 4


# --- export -----------------------------------------------------------------------------------------

def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "out.json"
    atomic_write(str(path), "one")
    atomic_write(str(path), "two")
    assert path.read_text() == "two"
    assert os.listdir(tmp_path) == ["out.json"]


def test_export_writes_parsable_counters_and_unique_names(tmp_path):
    counters = Session(make_workload("seq", accesses=50).chunks(), C.load()).counters()
    doc = counters_document(counters, workload="seq", spec={}, config={}, ops_done=0, total_ops=None,
                            finished=False, viewed="nested")
    a = write_export(str(tmp_path), doc, "<svg></svg>", "seq")
    b = write_export(str(tmp_path), doc, "<svg></svg>", "seq")
    assert a != b and all(os.path.isfile(p) for p in a + b)
    data = json.loads(open(a[0]).read())
    assert set(data["summary"]) == set(MODES) and data["viewed_mode"] == "nested"
    j, s = export_names(str(tmp_path), "trace /x/y z", 5, stamp="S")
    assert os.path.basename(j) == "rvi-tui-trace_x_y_z-op5-S.json" and s.endswith(".svg")


def test_exports_follow_the_umask_and_say_what_op_0_and_the_warm_up_mean(tmp_path):
    """Exports were written 0600 (record writes 0644); at op 0 overhead_vs_native was 0.0, not null; the JSON
    lacked the warm-up."""
    counters = Session(iter(()), C.load()).counters()
    doc = counters_document(counters, workload="tlbstress", spec={}, config={}, ops_done=0, total_ops=None,
                            finished=False, viewed="nested", warmup_ops=257, warmup_done=False)
    old = os.umask(0o022)
    try:
        paths = write_export(str(tmp_path), doc, "<svg></svg>", "tlbstress")
    finally:
        os.umask(old)
    assert all(os.stat(p).st_mode & 0o777 == 0o644 for p in paths)
    data = json.loads(open(paths[0]).read())
    assert (data["warmup_ops"], data["counted_from"]) == (257, 0)
    assert all(data["summary"][m]["overhead_vs_native"] is None for m in MODES)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in a read-only directory")
def test_an_export_to_a_read_only_directory_names_the_directory(tmp_path):
    os.chmod(tmp_path, 0o555)
    try:
        with pytest.raises(OSError) as info:
            write_export(str(tmp_path), {"ops_done": 0}, "<svg/>", "seq")
    finally:
        os.chmod(tmp_path, 0o755)
    assert info.value.filename == str(tmp_path) and os.listdir(tmp_path) == []


# --- counters window ----------------------------------------------------------------------------------

def test_counter_history_rates_only_while_running():
    clock = [0.0]
    h = CounterHistory(window_s=1.0, clock=lambda: clock[0])
    base = {m: {"accesses": 0, "exits": 0} for m in MODES}
    h.add(base, running=True)
    clock[0] = 0.5
    h.add({m: {"accesses": 500, "exits": 5} for m in MODES}, running=True)
    d = delta({m: {"accesses": 500} for m in MODES}, base)
    assert d["native"]["accesses"] == 500
    h.add(base, running=False)
    assert h.window() is None


# --- runner -----------------------------------------------------------------------------------------

def wait(cond, timeout=300.0):
    start = time.monotonic()
    while not cond():
        assert time.monotonic() - start < timeout
        time.sleep(0.01)


def test_runner_steps_runs_pauses_and_reports_errors():
    nudges = []
    runner = Runner(notify=nudges.append)
    runner.start()
    try:
        runner.load(RunSpec(workload="kcompile", params=(("jobs", 2),)))
        wait(lambda: runner.state == PAUSED)
        runner.step(5)
        wait(lambda: runner.session.ops_done == 5)
        frame = runner.pull("nested")
        assert frame.ops_done == 5 and frame.snapshot is not None and len(frame.records) == 5
        again = runner.pull("nested", since=frame.last_seq, have=(frame.generation, 5, "nested"))
        assert again.snapshot is None and again.records == []  # nothing new: no snapshot, no records
        runner.run()
        wait(lambda: runner.state == FINISHED)  # two jobs run to the end
        assert runner.total_ops == runner.session.ops_done
        assert "step" in nudges and "state" in nudges
        runner.load(RunSpec(workload="nope"))
        wait(lambda: runner.state == ERROR)
        assert runner.error.startswith("workload error: unknown workload 'nope'")
    finally:
        runner.stop()


def test_speeds_and_labels():
    assert SPEEDS[-1] is None and speed_label(len(SPEEDS) - 1) == "max"
    assert speed_label(SPEEDS.index(10)) == "10/s" and speed_label(SPEEDS.index(10_000)) == "10k/s"
    assert RunSpec(workload="kcompile", params=(("jobs", 5),), seed=2).label == "kcompile jobs=5 seed 2"
    assert RunSpec(workload=None, trace="/t/x.gz").label == "trace /t/x.gz"
    spec = RunSpec(levels=5, guest_page="2m").with_pages("2m", "2m")
    assert spec.overrides() == {"guest.page": "2m", "host.page": "2m", "guest.levels": 5, "host.levels": 5}


def test_the_app_module_imports_neither_numba_nor_the_engine_kernels():
    """The first frame must not wait for numba (~0.4 s): the engine thread imports it."""
    import subprocess
    code = ("import sys, rvi_tui.tui.app; "
            "bad = [m for m in ('numba', 'rvi_tui.engine.session', 'rvi_tui.workloads.registry') if m in sys.modules]; "
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_runner_running_state_and_pull_while_running():
    runner = Runner()
    runner.start()
    try:
        runner.load(RunSpec(workload="kcompile", params=(("jobs", 30),)))
        wait(lambda: runner.state == PAUSED)
        runner.run()
        wait(lambda: runner.state == RUNNING and runner.session.ops_done > 2000)
        pulls = []
        for _ in range(5):
            t = time.perf_counter()
            f = runner.pull("shadow")
            pulls.append(time.perf_counter() - t)
            assert f.counters["shadow"]["accesses"] == f.counters["native"]["accesses"]  # lockstep
        runner.pause()
        wait(lambda: runner.state == PAUSED)
        n = runner.session.ops_done
        time.sleep(0.2)
        assert runner.session.ops_done == n
    finally:
        runner.stop()
    assert threading.active_count() >= 1


def test_the_log_memo_gives_each_record_its_own_lines_and_stays_bounded():
    """A mode switch writes the last ops' lines anew from the memo: the lines are op_lines' own, made once per record
    and mode, and never another record's (records are told apart by identity, not by equal fields)."""
    from rvi_tui.tui.eventlog import OpLinesMemo
    from rvi_tui.tui.runner import OpRecord

    events = {"native": [ev.TlbLookup("L1 4K", True, 0, 7, 5, 0), ev.Translated(0x5000, 0, "L1")],
              "nested": [ref(2, 2, "L1D"), ev.Translated(0x9000, 0, "walk")]}
    memo = OpLinesMemo(4)
    first = OpRecord(1, 1, "R 0x5000", events, gap=3)
    lines = memo.lines(first, "native", 0)
    assert lines == op_lines(1, "R 0x5000", events["native"], 3, 0)
    assert memo.lines(first, "native", 0) is lines  # made once
    assert memo.lines(first, "nested", 4) == op_lines(1, "R 0x5000", events["nested"], 3, 4)
    twin = OpRecord(1, 1, "R 0x5000", {"native": []})  # same seq and op: another record
    assert memo.lines(twin, "native", 0) == op_lines(1, "R 0x5000", [], 0, 0) != lines
    for seq in range(2, 10):
        memo.lines(OpRecord(seq, seq, "W 0x1", {}), "native", 0)
    assert len(memo._lines) == 4 and memo.lines(first, "native", 0) is not lines  # the oldest went first
