"""Border titles that repaint only when they change.

Assigning ``Widget.border_title`` (or ``border_subtitle``) always repaints the
widget, even with the same text; the panes set their titles on every redraw.
"""

from __future__ import annotations


def set_title(widget, text: str) -> None:
    if getattr(widget, "_rvi_title", None) != text:
        widget._rvi_title = text
        widget.border_title = text


def set_subtitle(widget, text: str) -> None:
    if getattr(widget, "_rvi_subtitle", None) != text:
        widget._rvi_subtitle = text
        widget.border_subtitle = text
