"""Border titles that repaint only when they change, and that fit the border whole.

Assigning ``Widget.border_title`` (or ``border_subtitle``) always repaints the
widget, even with the same text; the panes set their titles on every redraw.
A title longer than its border is cut at a word with "…" (``fmt.fit``), never
inside a number; ``TitledPane`` fits the titles again when the pane is resized.
"""

from __future__ import annotations

from .. import fmt

BORDER_CELLS = 6  # '╭─ ' and ' ─╮' around a title


def _show(widget, attr: str) -> None:
    text = getattr(widget, f"_rvi_{attr}", None)
    if text is None:
        return
    width = widget.outer_size.width
    fitted = fmt.fit(text, width - BORDER_CELLS) if width else text
    if getattr(widget, attr) != fitted:
        setattr(widget, attr, fitted)


def set_title(widget, text: str) -> None:
    if getattr(widget, "_rvi_border_title", None) != text:
        widget._rvi_border_title = text
        _show(widget, "border_title")


def set_subtitle(widget, text: str) -> None:
    if getattr(widget, "_rvi_border_subtitle", None) != text:
        widget._rvi_border_subtitle = text
        _show(widget, "border_subtitle")


class TitledPane:
    """Mixed into a pane: its titles are fitted again to its new width."""

    def on_resize(self) -> None:
        _show(self, "border_title")
        _show(self, "border_subtitle")
