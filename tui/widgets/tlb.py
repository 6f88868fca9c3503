"""TLB pane: L1 and L2 contents, one line per valid entry, drawn with the Line API.

The L2 alone may hold thousands of entries, so rows are formatted only when
they scroll into view (``render_line``); a refresh costs the visible lines,
not the table. The entry the last op hit, filled or filled over an evicted
one is marked with a glyph and a word as well as a colour.
"""

from __future__ import annotations

from rich.text import Text
from textual.containers import Vertical
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from .. import fmt
from ..fmt import SIZE_LABELS
from ._border import TitledPane, set_subtitle, set_title

MARK_TEXT = {"hit": "●hit", "fill": "+fill", "evict": "×fill"}
# (name, heading, cells), in display order; PRIORITY says which a narrow pane keeps, most essential first.
COLUMNS = (("mark", "", 5), ("set", "set", 4), ("way", "way", 3), ("vpn", "VPN", 11), ("frame", "frame", 9),
           ("size", "sz", 2), ("pcid", "PCID", 4), ("vpid", "VPID", 4), ("flags", "WDG", 3))
PRIORITY = ("mark", "vpn", "frame", "size", "flags", "set", "way", "pcid", "vpid")
ALL_COLUMNS = frozenset(PRIORITY)
_WIDTH = {name: cells for name, _, cells in COLUMNS}


def shown_columns(width: int) -> frozenset[str]:
    """The columns a pane ``width`` cells wide shows: as many as fit, in PRIORITY order."""
    return frozenset(fmt.fit_columns(tuple((name, _WIDTH[name]) for name in PRIORITY), width))


def _line(values: dict, shown) -> str:
    return " ".join(f"{values[name]:>{cells}}" if name != "mark" and name != "flags" else f"{values[name]:{cells}}"
                    for name, _, cells in COLUMNS if name in shown)


def heading(shown=ALL_COLUMNS) -> str:
    return _line({name: head for name, head, _ in COLUMNS}, shown)


def entry_line(e, mark: str | None, shown=ALL_COLUMNS) -> str:
    flags = ("W" if e.writable else "-") + ("D" if e.dirty else "-") + ("G" if e.global_ else "-")
    size = SIZE_LABELS[e.size] if 0 <= e.size < len(SIZE_LABELS) else "?"
    return _line({"mark": MARK_TEXT.get(mark, ""), "set": e.set, "way": e.way, "vpn": f"{e.vpn:#x}",
                  "frame": f"{e.frame:#x}", "size": size, "pcid": e.pcid, "vpid": e.vpid, "flags": flags}, shown)


def head_line(view, width: int = 80) -> str:
    """'── L2  24/3072 entries  (128 sets × 24 ways)', shorter where that does not fit."""
    n = f"{len(view.entries)}/{view.capacity}"
    geometry = "fully assoc." if view.sets == 1 else f"{view.sets} sets × {view.ways} ways"
    short = "fully assoc." if view.sets == 1 else f"{view.sets}×{view.ways}"
    for line in (f"── {view.struct}  {n} entries  ({geometry}) ", f"── {view.struct} {n} · {short}"):
        if len(line) <= width:
            return line
    return fmt.fit(f"── {view.struct} {n}", width)


class TlbRows(ScrollView, can_focus=True):
    """The scrollable body: section heads and entries."""

    COMPONENT_CLASSES = {"tlb--head", "tlb--hit", "tlb--fill", "tlb--evict", "tlb--empty"}
    DEFAULT_CSS = """
    TlbRows { height: 1fr; scrollbar-size-vertical: 1; overflow-x: hidden; scrollbar-gutter: stable; }
    TlbRows > .tlb--head { color: $text-primary; text-style: bold; }
    TlbRows > .tlb--hit { color: $text-success; background: $success-muted; text-style: bold; }
    TlbRows > .tlb--fill { color: $text-accent; background: $accent-muted; text-style: bold; }
    TlbRows > .tlb--evict { color: $text-warning; background: $warning-muted; text-style: bold; }
    TlbRows > .tlb--empty { color: $text-muted; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.items: list = []  # ("head", TlbView) | ("entry", TlbEntry) | ("empty", str)
        self.marks: dict = {}
        self.shown = ALL_COLUMNS  # the columns that fit the pane's width

    def on_resize(self) -> None:
        shown = shown_columns(self.scrollable_content_region.width)
        if shown != self.shown:
            self.shown = shown
            self.refresh()
        self.post_message(TlbRows.ColumnsChanged())

    class ColumnsChanged(Message):
        """The rows' width changed: the pane's column heads follow."""

    def set_data(self, views, marks: dict, follow: bool) -> None:
        items: list = []
        for view in views:
            if view.capacity == 0:
                continue
            items.append(("head", view))
            if not view.entries:
                items.append(("empty", "   (empty)"))
            items.extend(("entry", e) for e in view.entries)
        self.items = items
        self.marks = marks
        # a new virtual size re-lays out, and so repaints, the whole screen: grow in steps and never shrink until
        # the next clear (rows past the items are blank). A running kcompile's TLB holds 300 entries, then 10 after
        # a context switch: shrinking with it cost a second full repaint every few redraws, and keys waited for it
        height = -(-len(items) // 64) * 64
        if self.virtual_size.height < height:
            self.virtual_size = Size(len(heading(self.shown)), height)
        if follow and marks:
            for i, (kind, e) in enumerate(items):
                if kind == "entry" and (e.struct, e.set, e.way) in marks:
                    if not (self.scroll_offset.y <= i < self.scroll_offset.y + self.size.height - 1):
                        self.scroll_to(y=max(0, i - self.size.height // 3), animate=False, immediate=True)
                    break
        self.refresh()

    def clear(self, note: str = "") -> None:
        self.items = [("empty", note)] if note else []
        self.marks = {}
        self.virtual_size = Size(len(heading(self.shown)), len(self.items))
        self.refresh()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        i = y + scroll_y
        width = self.size.width
        base = self.rich_style
        if i >= len(self.items):
            return Strip.blank(width, base)
        kind, obj = self.items[i]
        room = self.scrollable_content_region.width
        if kind == "head":
            text = Text(head_line(obj, room), style=self.get_component_rich_style("tlb--head"))
        elif kind == "empty":
            text = Text(fmt.fit(obj, room), style=self.get_component_rich_style("tlb--empty"))
        else:
            mark = self.marks.get((obj.struct, obj.set, obj.way))
            style = self.get_component_rich_style(f"tlb--{mark}") if mark else None
            text = Text(fmt.fit(entry_line(obj, mark, self.shown), room), style=style or "")
            if mark:
                text.pad_right(max(0, width - text.cell_len))
        strip = Strip(list(text.render(self.app.console)), text.cell_len).apply_style(base)
        return strip.crop_extend(scroll_x, scroll_x + width, base)


class TlbPane(TitledPane, Vertical):
    """Border, column heads and the rows."""

    DEFAULT_CSS = """
    TlbPane #tlb-columns { height: 1; color: $text-muted; text-style: bold; }
    """

    def compose(self):
        yield Static(heading(), id="tlb-columns", markup=False)
        yield TlbRows(id="tlb-rows")

    def on_tlb_rows_columns_changed(self) -> None:
        self.query_one("#tlb-columns", Static).update(heading(self.rows.shown))

    @property
    def rows(self) -> TlbRows:
        return self.query_one(TlbRows)

    def show(self, mode: str, snapshot, marks: dict, follow: bool, last_op: str = "") -> None:
        """last_op: what the newest op did in the TLB (the subtitle; occupancy when there is none)."""
        space = {"native": "VA→PA", "shadow": "gVA→hPA (from the shadow table)",
                 "nested": "gVA→hPA (guest and nested combined)"}[mode]
        set_title(self, f"TLB · {mode} · {space}")
        occ = []
        for view in snapshot.tlbs:
            if view.capacity:
                occ.append(f"{view.struct} {len(view.entries)}/{view.capacity}")
        set_subtitle(self, f"last op: {last_op}" if last_op else "  ".join(occ))
        self.rows.set_data(snapshot.tlbs, marks, follow)

    def show_note(self, mode: str, note: str) -> None:
        set_title(self, f"TLB · {mode}")
        set_subtitle(self, "")
        self.rows.clear(note)
