"""Travelling in time in the app: back, jump, find, the picker, Esc, session files; against runs stepped forward."""

from __future__ import annotations

import io
import json
import os
import time

from test_tui import SIZE, q, ready, settle, step_ops, wait_for
from textual.widgets import Input, OptionList

from rvi_tui.engine.report import summarize
from rvi_tui.tui import cli
from rvi_tui.tui.app import RviApp
from rvi_tui.tui.runner import VIEW_OPS, Runner
from rvi_tui.tui.sessionfile import SessionView, load, save
from rvi_tui.tui.travel import KIND_OPTIONS, JumpScreen, SearchKindScreen, parse_target
from rvi_tui.tui.widgets import StatusBar, TimelineStrip
from rvi_tui.tui.widgets.timeline import strip_cells

SMALL = {"workload_name": "kcompile", "workload_params": {"jobs": 6}}


async def seeked(pilot, app, op: int) -> None:
    await wait_for(pilot, lambda: app.runner.state in ("paused", "finished") and app.runner.session.ops_done == op
                   and app.frame is not None and app.frame.state == app.runner.state, what=f"op {op}")
    await settle(pilot, app)


async def test_back_left_jump_and_home_keys():
    app = RviApp(**SMALL)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await step_ops(pilot, app, 30)
        await pilot.press("b")
        await seeked(pilot, app, 29)
        await pilot.press("left")
        await seeked(pilot, app, 28)
        assert "op 28" in str(q(app, StatusBar).render())
        await pilot.press("g")
        assert isinstance(app.screen, JumpScreen)
        await pilot.press(*"+5", "enter")
        await seeked(pilot, app, 33)
        await pilot.press("g", *"-3", "enter")
        await seeked(pilot, app, 30)
        await pilot.press("g", *"abc", "enter")
        assert isinstance(app.screen, JumpScreen) and "not an op number" in str(app.screen.query_one("#jump-error").render())
        await pilot.press("escape")
        await pilot.press("g", *"2,000", "enter")  # past the ops run so far: runs forward to it
        await seeked(pilot, app, 2000)
        await pilot.press("home")
        await seeked(pilot, app, 0)
        await pilot.press("space")
        await seeked(pilot, app, 1)


def test_parse_target():
    assert parse_target("41,210", 5) == 41210 and parse_target("+1k", 5) == 1005 and parse_target("-9", 5) == 0


def frame_of(runner: Runner):
    f = runner.pull("nested")
    recs = [(r.op_index, r.op_text, r.events) for r in f.records][-VIEW_OPS:]
    return (f.ops_done, f.counters, f.snapshot, recs, f.latest and f.latest.op_index, f.marks,
            {m: runner.walks[m] for m in sorted(runner.walks)}, f.sparks, runner.warmup_done)


def wait_runner(runner: Runner, cond, timeout: float = 120) -> None:
    start = time.monotonic()
    while not cond():
        assert time.monotonic() - start < timeout, "timed out"
        time.sleep(0.01)


def runner_at(spec, steps: int, then_seek: int | None = None) -> Runner:
    r = Runner()
    r.start()
    r.load(spec)
    wait_runner(r, lambda: r.state == "paused")
    if steps:
        r.step(steps)
        wait_runner(r, lambda: r.session.ops_done == steps)
    if then_seek is not None:
        r.seek(then_seek)
        wait_runner(r, lambda: r.state in ("paused", "finished") and r.session.ops_done == then_seek)
    return r


def test_the_view_after_back_or_a_jump_is_the_view_of_a_run_stepped_there():
    """Counters, the snapshot (TLB with LRU ages, paths), the last ops' events, TLB marks, each mode's walk grid,
    sparklines and the warm-up state: all as a run stepped forward from op 0 shows them, also across a warm-up."""
    from rvi_tui.tui.app import make_spec

    for spec, k in ((make_spec("kcompile", {"jobs": 6}), 1300),
                    (make_spec("tlbstress", {"footprint": "2m", "accesses": "3k"}), 700)):
        stepped = runner_at(spec, k)
        back = runner_at(spec, k + 90, then_seek=k)
        jumped = runner_at(spec, 0, then_seek=k)
        want = frame_of(stepped)
        assert frame_of(back) == want
        assert frame_of(jumped) == want
        for r in (stepped, back, jumped):
            r.stop()


def test_going_back_op_after_op_shows_each_ops_stepped_view(monkeypatch):
    """Back one op at a time, past the ops and the spark samples the view cache held (made few here, so the
    cache is worked out again several times): each view is that of a run stepped to that op."""
    from rvi_tui.tui import runner as R
    from rvi_tui.tui.app import make_spec

    monkeypatch.setattr(R, "VIEW_EXTRA", 7)
    monkeypatch.setattr(R, "SPARK_EXTRA", 2)
    spec, k, n = make_spec("kcompile", {"jobs": 6}), 1300, 45
    back = runner_at(spec, 0, then_seek=k)
    views = {}
    for op in range(k - 1, k - 1 - n, -1):
        back.back()
        wait_runner(back, lambda: back.state == "paused" and back.session.ops_done == op)
        views[op] = frame_of(back)
    back.stop()
    stepped = runner_at(spec, k - n)
    for op in range(k - n, k):
        assert frame_of(stepped) == views[op], op
        stepped.step(1)
        wait_runner(stepped, lambda: stepped.session.ops_done == op + 1)
    stepped.stop()


async def pick(pilot, app, option: str, refs: str | None = None) -> None:
    assert isinstance(app.screen, SearchKindScreen)
    app.screen.query_one(OptionList).highlighted = [o for o, _ in KIND_OPTIONS].index(option)
    if refs is not None:
        app.screen.query_one("#min-refs", Input).value = refs
    app.screen.query_one(OptionList).focus()
    await pilot.press("enter")


async def test_n_picks_a_kind_once_then_n_and_shift_n_go_to_the_next_and_previous():
    app = RviApp(**SMALL)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("n")
        await pick(pilot, app, "os:fork")
        await wait_for(pilot, lambda: app.runner.state == "paused" and app.runner.session.ops_done > 0)
        first = app.runner.session.ops_done
        from rvi_tui.workloads import ops as O

        assert int(app.runner.session.last_op[0]["kind"]) == O.FORK
        await pilot.press("n")  # the kind is kept: no picker
        assert not isinstance(app.screen, SearchKindScreen)
        await wait_for(pilot, lambda: app.runner.state == "paused" and app.runner.session.ops_done > first)
        assert int(app.runner.session.last_op[0]["kind"]) == O.FORK
        await pilot.press("N")
        await seeked(pilot, app, first)
        await settle(pilot, app)
        assert "n/N: OS fork" in str(q(app, TimelineStrip).render())
        await pilot.press("N")  # none before the first: stays put and says so
        await wait_for(pilot, lambda: app.runner.state == "paused")
        await settle(pilot, app)
        assert app.runner.session.ops_done == first
        assert any("no OS fork before" in n.message for n in app._notifications)
        await pilot.press("k")
        await pick(pilot, app, "walk", refs="99")
        assert "from 1 to 35" in str(app.screen.query_one("#kind-error").render())
        await pilot.press("escape")


async def test_escape_cancels_a_long_search_and_goes_back():
    app = RviApp(workload_name="kcompile", workload_params={"jobs": 200})
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await step_ops(pilot, app, 3)
        app.runner.set_search(None)
        await pilot.press("k")
        await pick(pilot, app, "exit")  # in native: never, so it searches the whole run
        await pilot.press("1", "n")
        await wait_for(pilot, lambda: app.runner.state == "seeking" and app.runner.session.ops_done > 5000)
        await settle(pilot, app)
        assert "esc cancels" in str(q(app, StatusBar).render())
        keys = footer_keys(app)  # dimmed while the engine is away from the op shown, but for what still works
        assert keys["step"].has_class("-disabled") and not keys["view('native')"].has_class("-disabled")
        await pilot.press("escape")
        await seeked(pilot, app, 3)
        assert any("cancelled" in n.message for n in app._notifications)
        await settled_screen(pilot, app)
        lit = footer_keys(app)
        assert not lit["step"].has_class("-disabled")
        # lit again in place: the same widgets (a recompose of the footer took 60-150 ms of a key's time)
        assert all(lit[action] is key for action, key in keys.items())


def footer_keys(app) -> dict:
    from textual.widgets._footer import FooterKey

    return {k.action: k for k in app.main_screen.query(FooterKey)}


async def test_s_saves_a_session_that_reopens_on_the_same_screen(tmp_path):
    app = RviApp(**SMALL, mode="shadow", export_dir=str(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        app.runner.step(700)  # what `space` does, 700 times
        await wait_for(pilot, lambda: app.runner.session.ops_done == 700)
        await settle(pilot, app)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.last_session_path is not None)
        app.clear_notifications()
        await settle(pilot, app)
        live = await settled_screen(pilot, app)
        counters = app.frame.counters
    path = app.last_session_path
    assert path.endswith(".rvi.json") and json.load(open(path))["view"] == {
        "op": 700, "mode": "shadow", "event_filter": None, "search": None}
    again = RviApp(session_file=load(path))
    async with again.run_test(size=SIZE) as pilot:
        await seeked(pilot, again, 700)
        again.clear_notifications()
        await settle(pilot, again)
        assert again.view_mode == "shadow"
        assert await settled_screen(pilot, again) == live  # footer too: its keys lit, not dimmed as for a seek
    out = io.StringIO()
    assert cli.main(["report", "--session", path, "--json"], out=out, err=io.StringIO()) == 0
    report = json.loads(out.getvalue())
    assert report["op"] == 700 and report["modes"] == json.loads(json.dumps(summarize(counters)))


async def settled_screen(pilot, app, timeout: float = 10.0) -> list:
    """The screen once two reads 0.2 s apart agree: the footer's keys are dimmed or lit by a bindings refresh
    that can land after the last redraw of the panes."""
    start = time.monotonic()
    before = screen_text(app)
    while True:
        await pilot.pause(0.2)
        now = screen_text(app)
        if now == before or time.monotonic() - start > timeout:
            return now
        before = now


def screen_text(app) -> list:
    """What the screen shows, character by character with each character's style."""
    return [[(seg.text, str(seg.style)) for seg in strip] for strip in app.screen._compositor.render_strips()]


def test_session_file_errors_are_one_line(tmp_path):
    from rvi_tui.tui.app import make_spec

    trace = tmp_path / "t.txt"
    trace.write_text("0x1000\n0x2000\n")
    good = tmp_path / "a.rvi.json"
    save(str(good), make_spec(trace=str(trace)), SessionView(op=1))
    cases = {}
    trace.write_text("0x1000\n0x3000\n")
    cases["changed since the session was saved"] = good
    bad = tmp_path / "bad.rvi.json"
    bad.write_text('{"format": "rvi-tui session", "version": 1, "run": {')
    cases["damaged session file"] = bad
    new = tmp_path / "new.rvi.json"
    new.write_text(json.dumps({"format": "rvi-tui session", "version": 9, "run": {}, "view": {}}))
    cases["version 9 is not one this rvi-tui reads"] = new
    cases["no such session file"] = tmp_path / "missing.rvi.json"
    for words, path in cases.items():
        for argv in (["--session", str(path)], ["report", "--session", str(path), "--json"]):
            err = io.StringIO()
            assert cli.main(argv, out=io.StringIO(), err=err) == 2
            assert words in err.getvalue() and err.getvalue().count("\n") == 1, err.getvalue()


def test_shipped_tours_open(tmp_path):
    from rvi_tui.tui.sessionfile import tour_paths

    from rvi_tui.engine.session import Session
    from rvi_tui.tui.walks import split_walks

    paths = tour_paths()
    assert [os.path.basename(p) for p in paths] == ["1-cold-2d-walk.rvi.json", "2-shadow-sync-after-fork.rvi.json",
                                                    "3-large-page-walk.rvi.json"]
    shown = []
    for p in paths:
        sf = load(p)
        s = Session(sf.spec.make_workload().chunks(), sf.spec.config())
        s.run(sf.view.op - 1)
        events = s.step()[sf.view.mode]
        walks = [a.refs for a in split_walks(events) if a.fault is None]
        syncs = sum(type(e).__name__ == "ShadowSync" for e in events)
        shown.append((walks, syncs))
    assert shown[0][0] == [24] and shown[1][1] == 11 and shown[2][0] == [19]


def test_timeline_strip_cells():
    import numpy as np

    buckets = np.array([False, True, False, False])
    assert strip_cells(8, 0, 4096, 8192, buckets, 1024) == "●│──┄┄┄┄"  # bucket 1 = ops 1,024-2,047 = column 1
    assert strip_cells(4, 8192, 8192, 8192, None, 1024) == "───●"


async def test_between_an_exit_and_the_next_switch_the_table_panes_say_no_process_runs():
    """A process that exits leaves no current process until a switch to another: the guest and second
    table panes say so instead of drawing the table of 'pid -1' at CR3 0."""
    from rvi_tui.engine import config as C
    from rvi_tui.engine.session import Session
    from rvi_tui.workloads.registry import make_workload
    from rvi_tui.tui.widgets import GuestTablePane, SecondTablePane

    session = Session(make_workload(SMALL["workload_name"], **SMALL["workload_params"]).chunks(),
                      C.load(C.DEFAULT_PRESET, ()), modes=("native",))
    while session.machines["native"].os.current is not None:
        session.run(1)
    idle = session.ops_done  # the op after which no process runs
    app = RviApp(**SMALL)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("g", *str(idle), "enter")
        await seeked(pilot, app, idle)
        for pane in (GuestTablePane, SecondTablePane):
            text = str(q(app, pane).render())
            assert "no process is running" in text and "pid -1" not in text, text
        await pilot.press("space")
        await seeked(pilot, app, idle + 1)
        assert "pid -1" not in str(q(app, GuestTablePane).render())
        assert "· pid " in str(q(app, GuestTablePane).render())
