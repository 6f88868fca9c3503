"""The panes painted from Rich's strips (tui/widgets/_lines.py) against Textual's own drawing of the same Text.

Textual's path (a widget's ``render()`` made into strips through its ``Content``, ``Visual.to_strips``) is
the reference: every cell must hold the same character with the same colours and attributes, in each mode,
at a wide and a narrow size, with a walk on screen.
"""

from __future__ import annotations

import pytest
from rvi_tui.tui.app import PANES_HEIGHT, RviApp
from rvi_tui.tui.widgets._lines import RichLines
from textual.visual import Visual, visualize

from test_tui import SMALL, ready, settle, step_until


def cells(strip) -> list[tuple[str, object]]:
    """(character, style) per cell; the offsets Textual keeps in a style's meta, for the mouse, left out."""
    out = []
    for segment in strip:
        style = segment.style.clear_meta_and_links() if segment.style is not None else None
        out.extend((ch, style) for ch in segment.text)
    return out


def textual_lines(widget) -> list:
    """As Textual draws the widget: its lines, each brought to the widget's width in its base style (what the
    styles cache does with a line shorter than the content region)."""
    width, height = widget.size
    visual = visualize(widget, widget.render())
    base = widget.visual_style.rich_style
    return [strip.adjust_cell_length(width, base)
            for strip in Visual.to_strips(widget, visual, width, height, widget.visual_style)]


@pytest.mark.parametrize("size", [(120, 40), (100, 30)])
async def test_rich_strips_draw_every_cell_as_textual_does(size):
    app = RviApp(**SMALL)
    async with app.run_test(size=size) as pilot:
        await ready(pilot, app)
        await step_until(pilot, app, lambda: app.frame.walk is not None and app.frame.walk.refs >= 1
                         and app.runner.session.ops_done > 20)
        checked = set()
        for key in "123":
            await pilot.press(key)
            await settle(pilot, app)
            for widget in app.main_screen.query("*"):
                if not isinstance(widget, RichLines) or not widget.display or not widget.size.area:
                    continue
                ours = [cells(widget.render_line(y)) for y in range(widget.size.height)]
                theirs = [cells(strip) for strip in textual_lines(widget)]
                assert ours == theirs, (key, type(widget).__name__)
                assert any(ch != " " for line in ours for ch, _ in line), type(widget).__name__
                checked.add(type(widget).__name__)
    shown = {"CountersBody", "WalkGrid", "GuestTablePane", "SecondTablePane", "StatusBar", "TimelineStrip"}
    if size[1] < PANES_HEIGHT["second"]:  # too few rows for the second dimension's pane: hidden
        shown.remove("SecondTablePane")
    assert shown <= checked
