"""Page-table panes: the guest table's path for the last access, and the second dimension by mode.

Both draw ``PathRow`` tuples from the snapshot (root first). An entry the
last walk read is marked ``●`` with its reference number and where it was
served; one a walk cache saved is marked ``○`` with the cache's name.
"""

from __future__ import annotations

import re

from rich.text import Text
from textual.widget import Widget

from rvi_tui.engine import entry as E

from ..walks import WalkView
from .. import fmt
from ._border import TitledPane, set_title
from ._lines import RichLines, padded

SERVED_CLASS = {"L1D": "pt--l1d", "L2$": "pt--l2", "L3$": "pt--l3", "DRAM": "pt--dram", "mem": "pt--l3"}
STATE_TEXT = {"in sync": "in sync·WP", "unsync": "unsync", "direct": "direct"}
# A path's columns in priority order (name, cells), most essential first: a narrow pane keeps what fits.
PATH_COLUMNS = (("level", 5), ("frame", 12), ("walk", 10), ("flags", 8), ("idx", 3), ("table", 13))
NESTED_COLUMNS = (("name", 4), ("gpa", 11), ("hpa", 12), ("walk", 10), ("levels", 4 * 5))
_LABEL = re.compile(r"^(.*?)\s*gPA\s+(0x[0-9a-fA-F]+)\s*$")

PANE_CSS = """
    {name} {{ height: auto; text-wrap: nowrap; text-overflow: ellipsis; }}
    {name} > .pt--head {{ color: $text-muted; text-style: bold; }}
    {name} > .pt--read {{ text-style: bold; }}
    {name} > .pt--l1d {{ color: $text-success; }}
    {name} > .pt--l2 {{ color: $text-success; text-style: bold; }}
    {name} > .pt--l3 {{ color: $text-warning; text-style: bold; }}
    {name} > .pt--dram {{ color: $text-error; text-style: bold; }}
    {name} > .pt--skip {{ color: $text-accent; text-style: italic; }}
    {name} > .pt--muted {{ color: $text-muted; }}
    {name} > .pt--absent {{ color: $text-warning; }}
    {name} > .pt--unsync {{ color: $text-warning; text-style: bold; }}
    {name} > .pt--wp {{ color: $text-accent; text-style: bold; }}
    {name} > .pt--insync {{ color: $text-success; }}
"""
PT_CLASSES = {"pt--head", "pt--read", "pt--l1d", "pt--l2", "pt--l3", "pt--dram", "pt--skip", "pt--muted",
              "pt--absent", "pt--unsync", "pt--wp", "pt--insync"}


def leaf_of(path) -> tuple | None:
    """(PathRow, page size code) of the path's leaf, or None if the path ends at an absent entry."""
    for row in path:
        if not row.present:
            return None
        if row.level == 1 or (row.value & E.PS and row.level in (2, 3)):
            return row, row.level - 1
    return None


def translate(path, va: int) -> tuple[int, int] | None:
    """(physical address, size code) the path maps va to."""
    leaf = leaf_of(path)
    if leaf is None:
        return None
    row, size = leaf
    shift = E.page_shift(size)
    base = (row.frame << 12) & ~((1 << shift) - 1)
    return base | (va & ((1 << shift) - 1)), size


class _PathPane(TitledPane, RichLines, Widget):
    COMPONENT_CLASSES = PT_CLASSES

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._text = Text("starting…")

    def st(self, name: str):
        return self.get_component_rich_style(name)

    def render(self) -> Text:
        return self._text

    lines = 0  # the pane's fixed height (set by show); 0 = as the text needs

    def set_text(self, text: Text) -> None:
        """Repaint only if the text changed; re-layout only if its height did (auto-height pane).

        Text is padded to ``lines`` so that the height stays put while the engine runs: a pane that
        changes height re-lays out the whole screen."""
        text = padded(text, self.lines)
        if text == self._text:
            return
        relayout = text.plain.count("\n") != self._text.plain.count("\n")
        self._text = text
        self.refresh(layout=relayout)

    def walk_mark(self, view: WalkView | None, row: int, col: int) -> Text:
        """'● #5 DRAM' for a reference of the last walk, '○ PWC L3' for a saved one, '' otherwise."""
        if view is None:
            return Text("")
        cell = view.cells.get((row, col))
        if cell is None:
            return Text("")
        if cell.kind == "ref":
            return Text(f"● #{cell.num} {cell.served}", style=self.st(SERVED_CLASS.get(cell.served, "pt--read")))
        return Text(f"○ {cell.by}", style=self.st("pt--skip"))

    _args: tuple = ()  # what the pane last showed: shown again, laid out anew, when the pane is resized

    def on_resize(self) -> None:
        if self._args:
            self.show(*self._args)

    def path_lines(self, path, view: WalkView | None, head: str, table_space: str, states: bool = False) -> Text:
        """One line per entry, root first. With states (shadow), the sync state replaces the table column.
        A narrow pane leaves out columns, least essential last in PATH_COLUMNS."""
        width = self.content_region.width or 80
        shown = fmt.fit_columns(PATH_COLUMNS, width)
        out = Text(no_wrap=True, overflow="ellipsis")
        cols = f"{'level':<5}"
        if "table" in shown:
            cols += " " + (f"{'sync state':<12}" if states else f"{('table ' + table_space):>13}")
        if "idx" in shown:
            cols += f" {'idx':>3}"
        cols += f" {'→ frame':>12}"
        if "flags" in shown:
            cols += f" {'flags':<8}"
        if "walk" in shown:
            cols += " walk"
        out.append(fmt.fit(head, width) + "\n")
        out.append(cols + "\n", style=self.st("pt--head"))
        if not path:
            out.append("  (no entries)", style=self.st("pt--muted"))
            return out
        for row in path:
            mark = self.walk_mark(view, row.level, 0)
            style = self.st("pt--read") if mark.plain else None
            name = E.LEVEL_NAMES.get(row.level, f"L{row.level}")
            frame = f"{row.frame << 12:#x}" if row.present else "absent"
            line = Text(f"{name:<5}", style=style or "")
            if "table" in shown:
                if states:
                    state = STATE_TEXT.get(row.state, row.state or "")
                    cls = {"in sync": "pt--insync", "unsync": "pt--unsync"}.get(row.state, "pt--wp")
                    line.append(f" {state[:12]:<12}", style=self.st(cls))
                else:
                    line.append(f" {row.table << 12:>#13x}", style=style or "")
            if "idx" in shown:
                line.append(f" {row.index:>3}", style=style or "")
            line.append(f" {frame:>12}", style=(style or "") if row.present else self.st("pt--absent"))
            if "flags" in shown:
                line.append(f" {row.flags:<8}", style=style or "")
            if "walk" in shown:
                line.append(" ")
                line.append_text(mark)
            out.append_text(line)
            out.append("\n")
            if row.present and row.value & E.PS and row.level in (2, 3):
                break
        out.rstrip()
        return out


class GuestTablePane(_PathPane):
    DEFAULT_CSS = PANE_CSS.format(name="GuestTablePane")

    def show(self, mode: str, snap, view: WalkView | None) -> None:
        self._args = (mode, snap, view)
        space = "PA" if mode == "native" else "gPA"
        titles = {
            "native": "Page table (VA→PA) · the hardware walks it",
            "shadow": "Guest page table (gVA→gPA) · only software walks it",
            "nested": "Guest page table (gVA→gPA) · walked via nested",
        }
        set_title(self, titles[mode])
        self.lines = 2 + max(4, len(snap.guest_path), max((r.level for r in snap.guest_path), default=4))
        if view is not None and (view.vaddr != snap.vaddr or mode == "shadow"):
            view = None  # the last walk was for another address (or, in shadow mode, of another table)
        head = f"VA {snap.vaddr:#x} · pid {snap.pid} · CR3 {snap.guest_cr3 << 12:#x}"
        if mode != "native":
            head = "g" + head.replace("CR3", "gCR3")
        self.set_text(self.path_lines(snap.guest_path, view, head, space))

    def show_note(self, mode: str, note: str) -> None:
        self._args = ()
        set_title(self, "Page table" if mode == "native" else "Guest page table")
        self.set_text(Text(note, style=self.st("pt--muted")))


NATIVE_ELSEWHERE = ("In a VM this pane shows the second dimension:",
                    "2 shadow: the hypervisor's gVA→hPA copy the hardware walks",
                    "3 nested: the host table, walked for each guest reference")


class SecondTablePane(_PathPane):
    DEFAULT_CSS = PANE_CSS.format(name="SecondTablePane")

    def show(self, mode: str, snap, view: WalkView | None) -> None:
        self._args = (mode, snap, view)
        if view is not None and view.vaddr != snap.vaddr:
            view = None
        levels = max((r.level for r in snap.guest_path), default=4)
        self.lines = 2 + levels  # in every mode (native shows 2 of them): a mode key repaints the panes in place
        if mode == "native":
            self._native(snap)
        elif mode == "shadow":
            self._shadow(snap, view)
        else:
            self._nested(snap, view)

    def show_note(self, mode: str, note: str) -> None:
        self._args = ()
        set_title(self, {"native": "Physical memory", "shadow": "Shadow page table",
                             "nested": "Nested page table"}[mode])
        self.set_text(Text(note, style=self.st("pt--muted")))

    def _native(self, snap) -> None:
        set_title(self, "Physical memory (native: no second dimension)")
        width = self.content_region.width or 80
        out = Text(no_wrap=True, overflow="ellipsis")
        t = translate(snap.guest_path, snap.vaddr)
        if t is None:
            out.append(f"VA {snap.vaddr:#x} is not mapped (yet)", style=self.st("pt--muted"))
        else:
            pa, size = t
            out.append(f"VA {snap.vaddr:#x} → PA ")
            out.append(f"{pa:#x}", style="bold")
            out.append("\n" + fmt.fit(f"frame {pa >> 12:#x} · {E.PAGE_SIZE_LABELS[size]} page · one table, "
                                      "no hypervisor", width))
        # the rows the other modes fill (the pane keeps its height across mode keys) say what they show
        out.append("\n")
        for line in NATIVE_ELSEWHERE[:self.lines - 3]:
            out.append("\n" + fmt.fit(line, width), style=self.st("pt--muted"))
        self.set_text(out)

    def _shadow(self, snap, view) -> None:
        label, path = snap.second_paths[0] if snap.second_paths else ("", ())
        set_title(self, f"Shadow table (gVA→hPA) · hardware walks it · root {snap.cr3 << 12:#x}")
        head = f"{label} · WP = guest table write-protected" if label else "no shadow root"
        self.set_text(self.path_lines(path, view, head, "hPA", states=True))

    def _nested(self, snap, view) -> None:
        set_title(self, "Nested table (gPA→hPA) · a path per gPA of the walk")
        out = Text(no_wrap=True, overflow="ellipsis")
        if not snap.second_paths:
            out.append("no nested paths (no process is running)", style=self.st("pt--muted"))
            self.set_text(out)
            return
        levels = max(len(rows) for _, rows in snap.second_paths) or 4
        top = max((r.level for _, rows in snap.second_paths for r in rows), default=4)
        shown = fmt.fit_columns(NESTED_COLUMNS, self.content_region.width or 80)
        lv = list(range(top, top - levels, -1)) if "levels" in shown else []
        out.append(f"{'':<4} {'gPA':>11} " + "".join(f"{'nL' + str(i):>4}" for i in lv)
                   + f" {'→ hPA':>12}" + (" walk" if "walk" in shown else "") + "\n", style=self.st("pt--head"))
        glevels = max((r.level for r in snap.guest_path), default=4)
        for i, (label, rows) in enumerate(snap.second_paths):
            m = _LABEL.match(label)
            name, gpa = (m.group(1), m.group(2)) if m else (label, "")
            name = name.replace(" table", "")
            lm = re.match(r"gL(\d)", name)
            row_id = int(lm.group(1)) if lm else (0 if name.startswith("data") else glevels - i)
            line = Text(f"{name[:4]:<4} {gpa:>11} ")
            by_level = {r.level: r for r in rows}
            for lvl in lv:
                r = by_level.get(lvl)
                if r is None:
                    line.append(f"{'':>4}")
                    continue
                mark = view.cells.get((row_id, lvl)) if view is not None else None
                cls = "pt--read" if mark is not None and mark.kind == "ref" else (
                    "pt--skip" if mark is not None else "pt--muted")
                line.append(f"{r.index:>4}", style=self.st(cls))
            t = translate(rows, 0)
            if t is not None:
                leaf, _ = leaf_of(rows)
                line.append(f" {leaf.frame << 12:>#12x} ")
            else:
                line.append(f" {'absent':>12} ", style=self.st("pt--absent"))
            if "walk" in shown:
                line.append_text(self._row_walk(view, row_id))
            out.append_text(line)
            out.append("\n")
        out.rstrip()
        self.set_text(out)

    def _row_walk(self, view: WalkView | None, row: int) -> Text:
        if view is None:
            return Text("")
        cells = [c for (r, col), c in view.cells.items() if r == row and col != 0]
        if not cells:
            return Text("")
        refs = sum(1 for c in cells if c.kind == "ref")
        saved = sorted({c.by.split()[0] for c in cells if c.kind != "ref"})
        if not refs:
            return Text(f"○ {'/'.join(saved)}", style=self.st("pt--skip"))
        text = Text(f"● {refs} ref{'s' if refs > 1 else ''}", style=self.st("pt--read"))
        if saved:
            text.append(f" +{'/'.join(saved)}", style=self.st("pt--skip"))
        return text
