"""The app's dialogs driven from the keyboard alone, as a user without a mouse drives them."""

from __future__ import annotations

import os
import re

from rvi_tui.tui.app import RviApp
from rvi_tui.tui.screens import ConfirmScreen, WorkloadPicker
from rvi_tui.tui.widgets.counters import CountersBody
from textual.widgets import Input

from test_tui import SIZE, SMALL, ready, wait_for


async def test_tab_reaches_every_field_of_the_workload_picker_and_typed_text_lands_there(tmp_path):
    """Tab moves from the list to the parameters, the seed, the offered files and the trace path; what is typed
    goes into the focused field, and Enter in a field submits what the fields say (not the highlighted built-in
    alone)."""
    app = RviApp(**SMALL)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, WorkloadPicker), what="the picker")
        picker = app.screen
        await pilot.press("tab")
        assert picker.focused is picker.query_one("#params", Input)
        await pilot.press("ctrl+u", *"jobs=7")  # ctrl+u clears the field (the current run's parameters)
        await pilot.press("tab")
        assert picker.focused is picker.query_one("#seed", Input)
        await pilot.press("backspace", "3")
        await pilot.press("tab")
        assert picker.focused is picker.query_one("#offered")  # the guided tour's sessions
        await pilot.press("tab")
        assert picker.focused is picker.query_one("#trace", Input)
        await pilot.press("shift+tab", "shift+tab", "enter")  # back to the seed; Enter runs the built-in with these fields
        await wait_for(pilot, lambda: app.spec.seed == 3, what="the new run")
        assert app.spec.workload == "kcompile" and app.spec.params == (("jobs", "7"),)


async def test_the_picker_checks_parameters_in_the_dialog_and_keeps_the_current_run():
    """`nosuch=1` or `jobs=abc` closed the dialog, dropped the run and left the app in ERROR: the dialog now
    says what is wrong and stays open, and the run goes on; the list shows each workload's parameters."""
    app = RviApp(**SMALL)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot, app)
        generation = app.runner.generation
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, WorkloadPicker), what="the picker")
        picker = app.screen
        assert "parameters (defaults): jobs=200" in str(picker.query_one("#description").render())
        for typed, needle in (("nosuch=1", "has no parameter 'nosuch'"), ("jobs=abc", "jobs: bad count 'abc'")):
            picker.query_one("#params", Input).value = typed
            picker.query_one("#params", Input).focus()
            await pilot.press("enter")
            await pilot.pause(0.1)
            assert app.screen is picker and needle in str(picker.query_one("#picker-error").render())
        error = picker.query_one("#picker-error")
        trace = picker.query_one("#trace")
        offered = picker.query_one("#offered")
        assert offered.region.height == 3  # the tour's three sessions
        assert error.region.bottom <= 24 and trace.region.bottom <= 24  # both on screen at 80x24
        assert app.runner.generation == generation and app.runner.state == "paused"
        await pilot.press("escape")


async def test_an_export_that_cannot_be_written_says_where_and_what_to_do(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    app = RviApp(**SMALL, export_dir=str(not_a_dir))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("e")
        await pilot.pause(0.2)
        messages = [str(n.message) for n in app._notifications]
        assert any(m.startswith(f"export failed: {not_a_dir}: no such directory") and "--export-dir" in m
                   for m in messages), messages
        assert app.last_export is None and sorted(os.listdir(tmp_path)) == ["file"]


async def test_toasts_come_one_at_a_time_and_leave_dialogs_and_restarts_alone():
    """Toasts stacked over the panes and over dialogs; 'warm-up done' outlived `r`; +/- said nothing once the
    status line had dropped the speed (always at 80 columns)."""
    app = RviApp(workload_name="tlbstress", workload_params={"footprint": 1 << 20, "accesses": 2000})
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot, app)
        await pilot.press("minus", "minus")
        await pilot.pause(0.1)
        assert [str(n.message) for n in app._notifications] == ["speed 10k/s"]
        await pilot.press("plus", "plus", "plus")
        await pilot.pause(0.1)
        assert [str(n.message) for n in app._notifications] == ["speed max (already the fastest)"]
        await pilot.press("p")
        await wait_for(pilot, lambda: app.runner.state == "finished", what="the end of the run")
        await pilot.pause(0.2)
        assert len(app._notifications) == 1, [str(n.message) for n in app._notifications]  # finished replaced warm-up
        await pilot.press("r")
        await ready(pilot, app)
        assert [str(n.message) for n in app._notifications] == ["restarted tlbstress footprint=1048576 "
                                                               "accesses=2000 seed 1 from op 0"]
        await pilot.press("question_mark")
        await pilot.pause(0.1)
        assert not app._notifications  # nothing on top of the dialog


async def test_the_large_pages_question_counts_the_ops_run_until_the_key():
    app = RviApp(**SMALL)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("p")
        await wait_for(pilot, lambda: app.runner.session.ops_done > 500, what="a running start")
        before = app.runner.session.ops_done
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        question = str(app.screen.query_one("#question").render())
        asked = int(re.search(r"the ([\d,]+) ops run so far", question).group(1).replace(",", ""))
        assert asked >= before
        await pilot.press("n")


async def test_at_op_0_no_mode_has_an_overhead_yet():
    """At op 0 shadow showed `vs native +0.0%` while native showed `—`."""
    app = RviApp(**SMALL)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.pause(0.2)
        app.refresh_panes()
        body = app.main_screen.query_one(CountersBody).render().plain.splitlines()
        row = next(line for line in body if line.startswith("vs native"))
        assert row.split()[2:] == ["—", "—", "—"] or row.split()[2::2] == ["—", "—", "—"]
        assert "%" not in row


async def test_help_explains_every_counter_row_and_each_cost_with_its_source():
    from rvi_tui.tui.explain import ROWS
    from rvi_tui.tui.screens import HelpScreen
    from rvi_tui.tui.widgets.counters import MAIN_ROWS

    assert {label for label, _, _ in MAIN_ROWS} <= {label for label, _ in ROWS}
    app = RviApp(**SMALL, sets=("cost.vm_exit=2000",))
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot, app)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        text = app.screen.numbers
        assert "* **cycles/access**: (base + TLB + walk + guest OS + VM exits + hypervisor cycles) / accesses" in text
        assert "* `cost.vm_exit` = **2,000** cycles (set by an option): set by --set" in text
        assert "* `cost.ref_l1d` = **5** cycles (verified): [V: ChampSim L1D]" in text
        assert "**saved**" in text and "pf_fixed" in text
