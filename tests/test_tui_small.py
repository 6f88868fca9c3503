"""The app at its stated minimum, 80x24: every pane shows its essential columns whole, none cut mid-number."""

from __future__ import annotations

import re

import pytest
from rvi_tui.tui.app import RviApp
from rvi_tui.tui.widgets import CountersPane, EventLog, GuestTablePane, SecondTablePane, TlbPane, WalkGrid
from rvi_tui.tui.widgets.counters import CountersBody
from rvi_tui.tui.widgets.footer import KeyFooter
from rvi_tui.tui.widgets.tlb import TlbRows

from test_tui import SMALL, q, ready, settle, step_until

HEX = re.compile(r"0x[0-9a-f]+")


def lines_of(widget) -> list[str]:
    """The lines a pane shows, as text (a Line-API pane line by line)."""
    if hasattr(widget, "render_line"):
        return [widget.render_line(y).text.rstrip() for y in range(widget.size.height)]
    return widget.render().plain.splitlines()


def assert_whole(widget) -> list[str]:
    lines = lines_of(widget)
    width = widget.scrollable_content_region.width if hasattr(widget, "render_line") else widget.content_region.width
    for line in lines:
        assert len(line) <= width, (type(widget).__name__, width, line)
    return lines


async def test_every_pane_is_whole_at_80x24():
    app = RviApp(**SMALL)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot, app)
        await step_until(pilot, app, lambda: app.frame.walk is not None and app.frame.walk.refs >= 1
                         and app.runner.session.ops_done > 20)
        await settle(pilot, app)
        screen = app.main_screen
        # the counters: all three modes' columns whole (the nested one was cut to `10,4…`)
        body = assert_whole(q(app, CountersBody))
        summary = app.frame.counters
        head = next(line for line in body if "native" in line)
        assert head.split() == ["native", "shadow", "NESTED"]  # the viewed mode in capitals
        accesses = next(line for line in body if line.startswith("accesses"))
        assert accesses.split()[1:] == [f"{summary[m]['accesses']:,}" for m in ("native", "shadow", "nested")]
        for part in (" base", " TLB", " walk", " guest OS", " VM exits", " hypervisor"):
            assert any(line.startswith(part) for line in body), part
        # the 2-D walk keeps its gPTE column
        grid = assert_whole(q(app, WalkGrid))
        assert "gPTE" in grid[0] and all(f"nL{i}" in grid[0] for i in (4, 3, 2, 1))
        walk = q(app, WalkGrid)
        assert walk.size.height >= len(grid)  # every line of the grid and its summary, the result included
        assert any("→ hPA 0x" in line for line in grid)
        # the TLB keeps frame, size and flags
        tlb_head = str(screen.query_one("#tlb-columns").render())
        assert tlb_head.split() == ["VPN", "frame", "sz", "WDG"]
        assert_whole(q(app, TlbRows))
        # the event log shows many lines, and a cut line ends in '…' after a whole word
        log = q(app, EventLog)
        shown = [line for line in assert_whole(log) if line]
        assert len(shown) >= 8
        full = [line.text for line in log.lines]
        for line in shown:
            for value in HEX.findall(line):
                assert any(re.search(rf"{value}\b", text) for text in full), (value, line)
        # the footer is whole, help and quit included
        footer = screen.query_one(KeyFooter)
        keys = [k for k in footer.query("FooterKey") if k.display and k.parent.display]
        assert sum(k.outer_size.width for k in keys) <= 80
        assert {k.action for k in keys} >= {"quit", "help", "step", "toggle_run"}
        # panes left out at this height, least essential first; they come back on a taller terminal
        assert not screen.query_one(GuestTablePane).display and not screen.query_one(SecondTablePane).display
        await pilot.resize_terminal(80, 40)
        await pilot.pause(0.2)
        assert screen.query_one(GuestTablePane).display and screen.query_one(SecondTablePane).display
        for pane in (GuestTablePane, SecondTablePane, WalkGrid, CountersBody):
            assert_whole(q(app, pane))


async def test_a_resize_while_paused_lays_the_counters_out_again():
    """After a resize while paused the counters kept the old layout until the next op."""
    app = RviApp(**SMALL)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot, app)
        await settle(pilot, app)
        assert "total   now" in q(app, CountersBody).render().plain
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.3)
        assert "now" not in q(app, CountersBody).render().plain.split("\n")[0]
        assert_whole(q(app, CountersBody))


async def test_the_settings_dialog_is_whole_at_80x24():
    from rvi_tui.tui.settings_screen import SettingsScreen
    from textual.widgets import Button, Input

    app = RviApp(**SMALL)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot, app)
        await pilot.press("c")
        await pilot.pause(0.3)
        assert isinstance(app.screen, SettingsScreen)
        for widget in (app.screen.query_one("#settings-sets", Input), app.screen.query_one("#settings-apply", Button),
                       app.screen.query_one("#settings-error")):
            assert widget.region.height and widget.region.bottom <= 24, widget
        await pilot.press("escape")
