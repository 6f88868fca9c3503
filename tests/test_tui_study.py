"""The app's study tools as a user meets them: the Study screen (`t`), the settings screen (`c`) and a
pinned baseline (`m`) shown beside the current run."""

from __future__ import annotations

import pytest

from rvi_tui.engine import sweep
from rvi_tui.tui.app import RviApp
from rvi_tui.tui.study_screen import StudyScreen

from test_tui import SIZE, SMALL, ready, wait_for

SMALL_GRID = [("kcompile", (("jobs", "3"),)), ("random", (("footprint", "2m"), ("accesses", "3000")))]


async def open_study(pilot, app) -> None:
    await ready(pilot, app)
    await pilot.press("t")
    await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen), what="the study screen")


async def test_the_study_screen_runs_the_study_and_shows_table_and_bars(monkeypatch):
    grid = sweep.build_grid(SMALL_GRID)  # 2 workloads x 2 page pairs
    monkeypatch.setattr("rvi_tui.tui.study_screen.sweep.build_grid", lambda **kw: grid)
    app = RviApp(**SMALL)
    async with app.run_test(size=SIZE) as pilot:
        await open_study(pilot, app)
        screen = app.screen
        await wait_for(pilot, lambda: app.study_results is not None, timeout=300, what="the study to finish")
        from rich.console import Console

        console = Console(width=160, record=True)
        console.print(screen.table)
        text = console.export_text()
        assert "kcompile" in text and "random" in text and "4k/4k" in text and "2m/2m" in text
        chart = screen.chart.plain
        assert "overhead vs native" in chart and "nested" in chart and "█" in chart
        assert "4 cells" in screen.status
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, StudyScreen), what="back to the app")
        # the results stay: opening again shows them without running
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen), what="the study screen again")
        assert "4 cells" in app.screen.status


async def test_leaving_the_study_screen_while_it_runs_stops_it(monkeypatch):
    grid = sweep.build_grid([("kcompile", (("jobs", "40"),))], seeds=6)
    monkeypatch.setattr("rvi_tui.tui.study_screen.sweep.build_grid", lambda **kw: grid)
    app = RviApp(**SMALL)
    async with app.run_test(size=SIZE) as pilot:
        await open_study(pilot, app)
        await pilot.pause(1.0)
        await pilot.press("escape")
        await wait_for(pilot, lambda: all(w.is_finished for w in app.workers if w.group == "study"), timeout=60,
                       what="the study to stop")
        assert app.study_results is None  # stopped before the end


async def test_settings_change_the_machine_and_a_bad_value_keeps_the_run():
    from textual.widgets import Input, Select

    from rvi_tui.tui.settings_screen import SettingsScreen
    from rvi_tui.tui.widgets import CountersPane

    app = RviApp(**SMALL)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("space")
        await wait_for(pilot, lambda: app.runner.session.ops_done == 1, what="one step")
        # pin this run (4 KiB pages) as the baseline
        await pilot.press("m")
        assert app.pinned is not None and "@ op 1" in app.pinned[0]
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen), what="the settings screen")
        screen = app.screen
        # a bad config key: the dialog says so in one line and stays; the run is untouched
        screen.query_one("#settings-sets", Input).value = "tlb.l2.entries=7"
        await pilot.click("#settings-apply")
        await pilot.pause(0.1)
        assert isinstance(app.screen, SettingsScreen)
        assert "tlb.l2.entries" in str(screen.query_one("#settings-error").render())
        assert app.runner.session.ops_done == 1
        # 2 MiB pages and a bigger L2 TLB: applied, the run restarts with them
        screen.query_one("#settings-sets", Input).value = "tlb.l2.entries=1536 tlb.l2.ways=12"
        screen.query_one("#settings-guest", Select).value = "2m"
        screen.query_one("#settings-host", Select).value = "2m"
        # Pilot aims a click where the button is laid out now: let the form's new values lay out first
        await pilot.pause()
        assert await pilot.click("#settings-apply"), "the click missed the Apply button"
        await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen), what="the dialog to close")
        assert app.spec.guest_page == "2m" and app.spec.sets == ("tlb.l2.entries=1536", "tlb.l2.ways=12")
        await ready(pilot, app)
        cfg = app.runner.session.config
        assert cfg["guest.page"] == "2m" and cfg["tlb.l2.entries"] == 1536
        # the counters pane shows the pinned baseline beside the new run
        await pilot.press("space")
        await wait_for(pilot, lambda: app.runner.session.ops_done == 1, what="a step of the new run")
        await pilot.pause(0.2)
        app.refresh_panes()
        body = app.main_screen.query_one(CountersPane).body
        text = body._build().plain
        assert "pinned: kcompile" in text and "4k/4k" in text
        # m again unpins
        await pilot.press("m")
        assert app.pinned is None
