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
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from ..fmt import SIZE_LABELS
from ._border import set_subtitle, set_title

MARK_TEXT = {"hit": "●hit", "fill": "+fill", "evict": "×fill"}
COLUMNS = f"{'':5} {'set':>4} {'way':>3} {'VPN':>11} {'frame':>9} {'sz':>2} {'PCID':>4} {'VPID':>4} {'WDG':3}"


def entry_line(e, mark: str | None) -> str:
    flags = ("W" if e.writable else "-") + ("D" if e.dirty else "-") + ("G" if e.global_ else "-")
    size = SIZE_LABELS[e.size] if 0 <= e.size < len(SIZE_LABELS) else "?"
    return (f"{MARK_TEXT.get(mark, ''):5} {e.set:>4} {e.way:>3} {e.vpn:>#11x} {e.frame:>#9x} {size:>2} "
            f"{e.pcid:>4} {e.vpid:>4} {flags:3}")


def head_line(view) -> str:
    geometry = "fully assoc." if view.sets == 1 else f"{view.sets} sets × {view.ways} ways"
    return f"── {view.struct}  {len(view.entries)}/{view.capacity} entries  ({geometry}) "


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
        # a new virtual size re-lays out the screen: grow in steps (rows past the items are blank)
        height = -(-len(items) // 64) * 64
        if self.virtual_size.height < height or self.virtual_size.height > height + 64:
            self.virtual_size = Size(len(COLUMNS), height)
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
        self.virtual_size = Size(len(COLUMNS), len(self.items))
        self.refresh()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        i = y + scroll_y
        width = self.size.width
        base = self.rich_style
        if i >= len(self.items):
            return Strip.blank(width, base)
        kind, obj = self.items[i]
        if kind == "head":
            text = Text(head_line(obj), style=self.get_component_rich_style("tlb--head"))
        elif kind == "empty":
            text = Text(obj, style=self.get_component_rich_style("tlb--empty"))
        else:
            mark = self.marks.get((obj.struct, obj.set, obj.way))
            style = self.get_component_rich_style(f"tlb--{mark}") if mark else None
            text = Text(entry_line(obj, mark), style=style or "")
            if mark:
                text.pad_right(max(0, width - text.cell_len))
        strip = Strip(list(text.render(self.app.console)), text.cell_len).apply_style(base)
        return strip.crop_extend(scroll_x, scroll_x + width, base)


class TlbPane(Vertical):
    """Border, column heads and the rows."""

    DEFAULT_CSS = """
    TlbPane #tlb-columns { height: 1; color: $text-muted; text-style: bold; }
    """

    def compose(self):
        yield Static(COLUMNS, id="tlb-columns", markup=False)
        yield TlbRows(id="tlb-rows")

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
