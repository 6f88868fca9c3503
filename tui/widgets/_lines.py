"""Panes whose content is one Rich ``Text``, painted from strips that Rich makes once per change.

Textual turns a widget's ``render()`` into strips through its ``Content`` on every paint, giving each
segment a style of its own that carries the cell's offset. The live panes repaint several times a second,
and all of them at each mode key: at 120x40, paused, timed around each widget's ``render_lines``, the
counters' 37 lines took 7-9 ms a paint that way, and the panes together about 27 ms of a key's 41 ms. Rich's
own line split of the same ``Text`` takes 2 ms, and is kept until the pane changes or is resized: the panes
then took 14 ms of a key's 30 ms. ``tests/test_rich_lines.py`` holds every cell to Textual's own drawing.
What the offsets serve, selecting text with the mouse inside the app, these panes do not offer (the
terminal's own selection still works).
"""

from __future__ import annotations

from rich.text import Text
from textual.strip import Strip


def padded(text: Text, lines: int) -> Text:
    """``text`` with blank lines after it up to ``lines`` lines (a copy, if any are added). Panes keep their
    height this way while what they show gets shorter: a pane that changes height re-lays out the screen."""
    missing = lines - 1 - text.plain.count("\n")
    if missing <= 0:
        return text
    text = text.copy()
    text.append("\n" * missing)
    return text


RICH_OVERFLOW = {"clip": "crop", "fold": "fold", "ellipsis": "ellipsis"}  # CSS text-overflow → Rich's overflow


class RichLines:
    """Mixed in before ``Widget``: ``render()`` gives the Text, wrapped and cut as the widget's CSS says
    (``text-wrap``, ``text-overflow``), unless the Text says itself."""

    _strips: list[Strip] | None = None
    _strips_size = None

    def refresh(self, *regions, repaint: bool = True, layout: bool = False, recompose: bool = False):
        self._strips = None  # every change of what the pane shows comes through here
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    def render_line(self, y: int) -> Strip:
        size = self.size
        if self._strips is None or self._strips_size != size:
            console = self.app.console
            styles = self.styles
            options = console.options.update(width=size.width, height=None, no_wrap=styles.text_wrap == "nowrap",
                                             overflow=RICH_OVERFLOW[styles.text_overflow])
            style = self.visual_style.rich_style
            lines = console.render_lines(self.render(), options, style=style, pad=True)
            self._strips = [Strip(line, size.width) for line in lines[:size.height]]
            self._strips_size = size
        if y < len(self._strips):
            return self._strips[y]
        return Strip.blank(size.width, self.visual_style.rich_style)
