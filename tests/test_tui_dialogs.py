"""The app's dialogs driven from the keyboard alone, as a user without a mouse drives them."""

from __future__ import annotations

import os

from rvi_tui.tui.app import RviApp
from rvi_tui.tui.screens import WorkloadPicker
from textual.widgets import Input

from test_tui import SIZE, SMALL, ready, wait_for


async def test_tab_reaches_every_field_of_the_workload_picker_and_typed_text_lands_there(tmp_path):
    """Tab moves from the list to the parameters, the seed and the trace path; what is typed goes into the
    focused field, and Enter in a field submits what the fields say (not the highlighted built-in alone)."""
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
        assert picker.focused is picker.query_one("#trace", Input)
        await pilot.press("shift+tab", "enter")  # back to the seed; Enter runs the built-in with these fields
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
