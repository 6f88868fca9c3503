"""Events pane: what the hardware, the guest OS and the hypervisor did, op by op, for the viewed mode.

A bounded log drawn with the Line API: lines are formatted only when they
scroll into view, so switching mode (a different history) or the filter
(a different subset) costs a list rebuild, not a re-render of the log. It
follows the newest line unless the user has scrolled up.
"""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from .. import fmt
from ..eventlog import KINDS, LogLine
from ._border import TitledPane, set_subtitle, set_title

MAX_LINES = 2000
GROW = 250  # the least virtual height: it doubles from here as the log grows
WIDTH = 80  # virtual width before the first layout; then the pane's (longer lines are cut at its edge)


class EventLog(TitledPane, ScrollView, can_focus=True):
    COMPONENT_CLASSES = {f"ev--{k}" for k in KINDS}
    DEFAULT_CSS = """
    EventLog { scrollbar-size-vertical: 1; overflow-x: hidden; scrollbar-gutter: stable; }
    EventLog > .ev--op { color: $text; text-style: bold; }
    EventLog > .ev--tlb { color: $text-muted; }
    EventLog > .ev--walk { color: $text-primary; }
    EventLog > .ev--fault { color: $text-warning; text-style: bold; }
    EventLog > .ev--exit { color: $text-error; text-style: bold; }
    EventLog > .ev--sync { color: $text-accent; }
    EventLog > .ev--os { color: $text-secondary; text-style: bold; }
    EventLog > .ev--flush { color: $text-warning; }
    """

    EMPTY = (  # lines short enough for the pane at 120 columns, whose text is 59 wide
        "No events yet. Each op you step lists, in order:",
        "  TLB lookups and fills, WALK (the page walks),",
        "  #PF (faults), EXIT (VM exits: reason, cycles),",
        "  SYNC (shadow sync), OS (guest OS ops), FLUSH.",
        "",
        "space steps one op · p runs/pauses",
        "1 2 3 switch mode · ? help",
    )

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.kinds: set[str] = set(KINDS)
        self.lines: deque[LogLine] = deque(maxlen=MAX_LINES)
        self.mode = ""
        self.follow = True  # stick to the newest line until the user scrolls up

    def set_title(self, mode: str) -> None:
        self.mode = mode
        set_title(self, f"Events · {mode}")
        hidden = [k for k in KINDS if k not in self.kinds]
        set_subtitle(self, ("hidden: " + ", ".join(hidden) + " · f: filter") if hidden else "f: filter by kind")

    # Following stops only when the user scrolls up (keys, wheel, scrollbar), not when a layout change
    # clamps the scroll position; it resumes when the user reaches the end again.
    def _user_scrolled_up(self) -> None:
        self.follow = False

    def _on_mouse_scroll_up(self, event) -> None:
        self._user_scrolled_up()
        super()._on_mouse_scroll_up(event)

    def _on_scroll_up(self, event) -> None:
        self._user_scrolled_up()
        super()._on_scroll_up(event)

    def _on_scroll_to(self, message) -> None:
        super()._on_scroll_to(message)
        self.follow = self.scroll_target_y >= self.max_scroll_y

    def action_scroll_up(self) -> None:
        self._user_scrolled_up()
        super().action_scroll_up()

    def action_page_up(self) -> None:
        self._user_scrolled_up()
        super().action_page_up()

    def action_scroll_home(self) -> None:
        self._user_scrolled_up()
        super().action_scroll_home()

    def action_scroll_end(self) -> None:
        self.follow = True
        super().action_scroll_end()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if new_value > old_value and new_value >= self.max_scroll_y:
            self.follow = True

    def _virtual_height(self) -> int:
        """GROW rows, doubled as often as the lines need (capped at MAX_LINES), and never less than before
        until the log is empty: changing a ScrollView's virtual size re-lays out and repaints the whole screen
        (~50 ms here), so it happens a few times a run, not on every redraw of a growing log or every mode
        switch (which writes the log anew, shorter). Lines are drawn bottom-aligned; the rows above the oldest
        line are blank."""
        n = len(self.lines)
        if not n:
            return 0
        height = max(GROW, self.virtual_size.height)
        while height < n:
            height *= 2
        return min(MAX_LINES, height)

    def _resize(self) -> None:
        size = Size(self.scrollable_content_region.width or WIDTH, self._virtual_height())
        if size != self.virtual_size:
            self.virtual_size = size
        if self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.refresh()

    def add_lines(self, lines: list[LogLine]) -> None:
        shown = [line for line in lines if line.kind in self.kinds]
        if not shown:
            return
        self.lines.extend(shown)
        self._resize()

    def reset(self, lines) -> None:
        self.lines = deque((line for line in lines if line.kind in self.kinds), maxlen=MAX_LINES)
        self.follow = True
        self._resize()

    @property
    def shown_lines(self) -> int:
        return len(self.lines)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        i = y + scroll_y
        width = self.size.width
        base = self.rich_style
        room = self.scrollable_content_region.width
        if not self.lines:
            if i < len(self.EMPTY):
                text = Text(fmt.fit(self.EMPTY[i], room), style=self.get_component_rich_style("ev--tlb"), no_wrap=True)
                return Strip(list(text.render(self.app.console)), text.cell_len).apply_style(base).crop_extend(
                    scroll_x, scroll_x + width, base)
            return Strip.blank(width, base)
        if self.follow:
            # following: the newest lines fill the pane whatever the scroll position says (scroll_end
            # lands after the next refresh; the picture must not depend on when it is taken)
            i = len(self.lines) - self.scrollable_content_region.height + y
        else:
            i -= self._virtual_height() - len(self.lines)  # bottom-aligned
        if not 0 <= i < len(self.lines):
            return Strip.blank(width, base)
        line = self.lines[i]
        # cut at a word with '…', never inside a number: 'hPA 0x4f7f890' cut from 0x4f7f89000 read as another address
        text = Text(fmt.fit(line.text, room), style=self.get_component_rich_style(f"ev--{line.kind}"), no_wrap=True)
        strip = Strip(list(text.render(self.app.console)), text.cell_len).apply_style(base)
        return strip.crop_extend(scroll_x, scroll_x + width, base)
