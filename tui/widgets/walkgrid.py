"""Walk-grid pane: the last TLB miss's walk, every reference numbered in walk order.

Nested mode draws the 2-D grid: rows are the guest-physical addresses the
walk translates (the guest table pages from gCR3 down, then the data page),
columns the nested levels plus the read of the guest entry. Native and shadow
draw their 1-D walk. Cells carry text as well as colour: the reference number
and where it was served (L1D, L2$, L3$, DRAM), or the walk cache that saved it
(PWC, NWC, NTLB).
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from rvi_tui.engine import entry as E

from .. import fmt
from ..walks import SERVED_ORDER, WalkView
from ._border import TitledPane, set_subtitle, set_title
from ._lines import RichLines, padded

CELL = 7
# (row-label cells, cell cells, numbered cells?) of the 2-D grid, widest first
GRID_LAYOUTS = ((9, CELL, True), (9, 4, False), (5, 4, False))
# the 1-D walk's columns in priority order (name, cells): level and ref are always there
ONE_D_COLUMNS = (("level", 9), ("ref", CELL), ("entry", 18), ("flags", 8), ("address", 16))
SUMMARY_LINES = 3
SERVED_CLASS = {"L1D": "walk--l1d", "L2$": "walk--l2", "L3$": "walk--l3", "DRAM": "walk--dram", "mem": "walk--mem"}
FAULT_NAMES = {"guest-fault": "guest #PF", "npf": "nested #PF", "shadow-fault": "shadow #PF"}


def row_label(row: int, glevels: int, two_d: bool, mode: str) -> str:
    if two_d:
        if row == 0:
            return "data gPA"
        return f"gL{row} gCR3" if row == glevels else f"gL{row}"
    prefix = "s" if mode == "shadow" else ""
    return f"{prefix}L{row} {E.LEVEL_NAMES.get(row, '')}"


def col_label(col: int) -> str:
    return "gPTE" if col == 0 else f"nL{col}"


class WalkGrid(TitledPane, RichLines, Widget):
    COMPONENT_CLASSES = {"walk--l1d", "walk--l2", "walk--l3", "walk--dram", "walk--mem", "walk--skip",
                         "walk--implied", "walk--empty", "walk--head", "walk--fault", "walk--note"}
    DEFAULT_CSS = """
    WalkGrid { height: auto; text-wrap: nowrap; text-overflow: ellipsis; }
    WalkGrid > .walk--l1d { color: $text-success; }
    WalkGrid > .walk--l2 { color: $text-success; text-style: bold; }
    WalkGrid > .walk--l3 { color: $text-warning; text-style: bold; }
    WalkGrid > .walk--dram { color: $text-error; text-style: bold reverse; }
    WalkGrid > .walk--mem { color: $text-warning; text-style: bold; }
    WalkGrid > .walk--skip { color: $text-accent; text-style: italic; }
    WalkGrid > .walk--implied { color: $text-muted; }
    WalkGrid > .walk--empty { color: $text-disabled; }
    WalkGrid > .walk--head { color: $text-muted; text-style: bold; }
    WalkGrid > .walk--fault { color: $text-warning; }
    WalkGrid > .walk--note { color: $text-muted; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.view: WalkView | None = None
        self.mode = "nested"
        self.glevels = 4
        self.hlevels = 4
        self.note = "starting…"

    def show(self, mode: str, view: WalkView | None, glevels: int, hlevels: int, note: str = "") -> None:
        inputs = (mode, id(view), glevels, hlevels, note if view is None else "")
        if inputs == getattr(self, "_inputs", None):
            return
        self._inputs = inputs
        lines_before = self._line_count()
        self.mode, self.view, self.glevels, self.hlevels = mode, view, glevels, hlevels
        self.note = note
        if view is None:
            set_title(self, "2-D walk (nested)" if mode == "nested" else f"1-D walk ({mode})")
        elif view.two_d:
            set_title(self, f"2-D walk of the last TLB miss · op #{view.op_index:,}")
        else:
            table = "shadow table" if mode == "shadow" else "page table"
            set_title(self, f"1-D walk of the {table}, last TLB miss · op #{view.op_index:,}")
        set_subtitle(self, "L1D L2$ L3$ DRAM: served by · PWC NWC NTLB: saved by")
        self.refresh(layout=self._line_count() != lines_before)

    def _line_count(self) -> int:
        """Fixed for a level count, the same in every mode (the 2-D grid's rows): a mode key then repaints the
        panes where they stand, and a pane that changed height would re-lay out the whole screen."""
        return self.glevels + 1 + 1 + SUMMARY_LINES  # column heads, rows, the summary's lines

    def _style(self, name: str):
        return self.get_component_rich_style(name)

    def _cell(self, cell, width: int = CELL, numbered: bool = True) -> Text:
        """A cell ``width`` wide: '12 DRAM' (reference 12, served by DRAM) or, without the number, 'DRAM'."""
        if cell is None:
            return Text("·".center(width), style=self._style("walk--empty"))
        if cell.kind == "ref":
            text = f"{cell.num:>2} {cell.served}" if numbered else cell.served
            return Text(text[:width].ljust(width), style=self._style(SERVED_CLASS[cell.served]))
        if cell.kind == "implied":
            return Text("─".center(width), style=self._style("walk--implied"))
        name = cell.by if numbered else cell.by.split()[0]
        return Text(name[:width].center(width), style=self._style("walk--skip"))

    def render(self) -> Text:
        v = self.view
        width = self.content_region.width or 80
        if v is None:
            out = Text(fmt.fit(self.note or "no TLB miss yet: step with space, or run with p", width),
                       style=self._style("walk--note"))
        else:
            out = Text(no_wrap=True, overflow="ellipsis")
            if v.two_d:
                self._render_2d(out, v, width)
            else:
                self._render_1d(out, v, width)
            self._render_summary(out, v, width)
        return padded(out, self._line_count())

    @staticmethod
    def grid_layout(n_cols: int, width: int) -> tuple[int, int, bool]:
        """(row-label cells, cell cells, numbered?) of the widest 2-D grid that fits ``width``: reference
        numbers go first, then the long row labels ('gL4 gCR3' becomes 'gL4')."""
        for label, cell, numbered in GRID_LAYOUTS:
            if label + n_cols * (cell + 1) + 1 <= width:
                break
        return label, cell, numbered

    def _render_2d(self, out: Text, v: WalkView, width: int) -> None:
        label_w, cell_w, numbered = self.grid_layout(len(v.cols), width)
        head = Text(" " * label_w, style=self._style("walk--head"))
        for c in v.cols:
            if c == 0:
                head.append("│", style=self._style("walk--empty"))
            head.append(f"{col_label(c):^{cell_w}} ", style=self._style("walk--head"))
        out.append_text(head)
        out.append("\n")
        for r in v.rows:
            name = row_label(r, self.glevels, True, v.mode)
            line = Text(f"{name if len(name) <= label_w - 1 else name.split()[0]:<{label_w}}",
                        style=self._style("walk--head"))
            for c in v.cols:
                if c == 0:
                    line.append("│", style=self._style("walk--empty"))
                    if r == 0:
                        line.append_text(Text("→ data".center(cell_w)[:cell_w] if numbered else "data",
                                              style=self._style("walk--implied")))
                        continue
                line.append_text(self._cell(v.cells.get((r, c)), cell_w, numbered))
                line.append(" ")
            out.append_text(line)
            out.append("\n")

    def _render_1d(self, out: Text, v: WalkView, width: int) -> None:
        shown = fmt.fit_columns(ONE_D_COLUMNS, width, gap=2)
        numbered = "ref" in shown
        ref_w = CELL if numbered else 4
        head = f"{'level':<9}{'ref':^{ref_w}}"
        for name, heading, cells in (("address", "entry address", 16), ("entry", "entry", 18)):
            if name in shown:
                head += f"  {heading:>{cells}}"
        if "flags" in shown:
            head += "  flags"
        out.append(head + "\n", style=self._style("walk--head"))
        for r in v.rows:
            cell = v.cells.get((r, 0))
            line = Text(f"{row_label(r, self.glevels, False, v.mode):<9}", style=self._style("walk--head"))
            line.append_text(self._cell(cell, ref_w, numbered))
            if cell is not None and cell.kind == "ref":
                if "address" in shown:
                    line.append(f"  {cell.paddr:>#16x}")
                if "entry" in shown:
                    line.append(f"  {cell.entry & 0xFFFFFFFFFFFFFFFF:>#18x}")
                if "flags" in shown:
                    line.append(f"  {E.flags_text(cell.entry)}")
            elif cell is not None:
                line.append(fmt.fit("  saved: a walk cache held this level", max(0, width - line.cell_len)),
                            style=self._style("walk--note"))
            out.append_text(line)
            out.append("\n")

    def _render_summary(self, out: Text, v: WalkView, width: int) -> None:
        """Three lines: what the walk read and saved, where it led and what it cost, the faulted attempts
        before it; parts that do not fit a line go to the next, so no number is ever cut."""
        served = Text(f"{v.refs} ref{'s' if v.refs != 1 else ''}", style="bold")
        sep = ": "
        for s in SERVED_ORDER:
            if v.served.get(s):
                served.append(sep)
                served.append(f"{s} {v.served[s]}", style=self._style(SERVED_CLASS[s]))
                sep = " "
        parts = [served]
        if v.skipped:
            saved = Text(f"{sum(v.skipped.values())} saved: ")
            saved.append(" ".join(f"{k} {n}" for k, n in v.skipped.items()), style=self._style("walk--skip"))
            parts.append(saved)
        if v.result is not None:
            size = ("4K", "2M", "1G")[v.result.size] if 0 <= v.result.size < 3 else "?"
            space = "PA" if v.mode == "native" else "hPA"
            parts.append(Text(f"→ {space} {v.result.paddr:#x} ({size} TLB page)"))
        parts.append(Text(f"walk ≈{v.cycles:,} cycles"))
        if v.assist:
            parts.append(Text("D-bit assist re-walk"))
        if v.faulted:
            counts: dict[str, int] = {}
            for f in v.faulted:
                name = FAULT_NAMES.get(f.kind, f.kind)
                counts[name] = counts.get(name, 0) + 1
            kinds = ", ".join(f"{k} ×{n}" if n > 1 else k for k, n in counts.items())
            parts.append(Text(f"after {len(v.faulted)} faulted walk{'s' if len(v.faulted) > 1 else ''} "
                              f"({kinds}): see Events", style=self._style("walk--fault")))
        out.append_text(flow(parts, width, SUMMARY_LINES))


def flow(parts: list[Text], width: int, lines: int) -> Text:
    """``parts`` joined by ' · ', a part that does not fit going to the next line; at most ``lines`` lines,
    the last ending in '…' if parts were left out (a part is never cut inside)."""
    rows: list[Text] = [Text()]
    for i, part in enumerate(parts):
        row = rows[-1]
        if row.cell_len and row.cell_len + 3 + part.cell_len > width:
            if len(rows) == lines:
                row.append(" …" if row.cell_len + 2 <= width else "")
                break
            rows.append(Text())
            row = rows[-1]
        elif row.cell_len:
            row.append(" · ")
        if part.cell_len > width:  # too long for any line: cut at a word, with '…'
            part = Text(fmt.fit(part.plain, width), style=part.style)
        row.append_text(part)
    return Text("\n").join(rows)
