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

from ..walks import SERVED_ORDER, WalkView
from ._border import set_subtitle, set_title

CELL = 7
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


class WalkGrid(Widget):
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
        """Fixed for a mode and a level count: a pane that changed height would re-lay out the screen."""
        rows = self.glevels + 1 if self.mode == "nested" else self.glevels
        return rows + 1 + 3  # column heads, rows, summary, result, faulted attempts

    def _style(self, name: str):
        return self.get_component_rich_style(name)

    def _cell(self, cell, width: int = CELL) -> Text:
        if cell is None:
            return Text("·".center(width), style=self._style("walk--empty"))
        if cell.kind == "ref":
            return Text(f"{cell.num:>2} {cell.served:<4}"[:width].ljust(width), style=self._style(SERVED_CLASS[cell.served]))
        if cell.kind == "implied":
            return Text("─".center(width), style=self._style("walk--implied"))
        return Text(cell.by[:width].center(width), style=self._style("walk--skip"))

    def render(self) -> Text:
        v = self.view
        if v is None:
            out = Text(self.note or "no TLB miss yet: step with space, or run with p",
                       style=self._style("walk--note"))
        else:
            out = Text(no_wrap=True, overflow="ellipsis")
            if v.two_d:
                self._render_2d(out, v)
            else:
                self._render_1d(out, v)
            self._render_summary(out, v)
        missing = self._line_count() - 1 - out.plain.count("\n")
        if missing > 0:
            out.append("\n" * missing)
        return out

    def _render_2d(self, out: Text, v: WalkView) -> None:
        head = Text(f"{'':9}", style=self._style("walk--head"))
        for c in v.cols:
            if c == 0:
                head.append("│", style=self._style("walk--empty"))
            head.append(f"{col_label(c):^{CELL}} ", style=self._style("walk--head"))
        out.append_text(head)
        out.append("\n")
        for r in v.rows:
            line = Text(f"{row_label(r, self.glevels, True, v.mode):<9}", style=self._style("walk--head"))
            for c in v.cols:
                if c == 0:
                    line.append("│", style=self._style("walk--empty"))
                    if r == 0:
                        line.append_text(Text("→ data".center(CELL), style=self._style("walk--implied")))
                        continue
                line.append_text(self._cell(v.cells.get((r, c))))
                line.append(" ")
            out.append_text(line)
            out.append("\n")

    def _render_1d(self, out: Text, v: WalkView) -> None:
        out.append(f"{'level':<9}{'ref':^{CELL}}  {'entry address':>16}  {'entry':>14}  flags\n",
                   style=self._style("walk--head"))
        for r in v.rows:
            cell = v.cells.get((r, 0))
            line = Text(f"{row_label(r, self.glevels, False, v.mode):<9}", style=self._style("walk--head"))
            line.append_text(self._cell(cell))
            if cell is not None and cell.kind == "ref":
                line.append(f"  {cell.paddr:>#16x}  {cell.entry & 0xFFFFFFFFFFFFFFFF:>#14x}  {E.flags_text(cell.entry)}")
            elif cell is not None:
                line.append("  saved: a walk cache held this level", style=self._style("walk--note"))
            out.append_text(line)
            out.append("\n")

    def _render_summary(self, out: Text, v: WalkView) -> None:
        line = Text(f"{v.refs} ref{'s' if v.refs != 1 else ''}", style="bold")
        sep = ": "
        for s in SERVED_ORDER:
            if v.served.get(s):
                line.append(sep)
                line.append(f"{s} {v.served[s]}", style=self._style(SERVED_CLASS[s]))
                sep = " "
        if v.skipped:
            by_cache: dict[str, int] = {}
            for k, n in v.skipped.items():
                by_cache[k.split()[0]] = by_cache.get(k.split()[0], 0) + n
            line.append(f" · {sum(by_cache.values())} saved: ")
            line.append(" ".join(f"{k} {n}" for k, n in by_cache.items()), style=self._style("walk--skip"))
        out.append_text(line)
        out.append("\n")
        tail = Text()
        if v.result is not None:
            size = ("4K", "2M", "1G")[v.result.size] if 0 <= v.result.size < 3 else "?"
            space = "PA" if v.mode == "native" else "hPA"
            tail.append(f"→ {space} {v.result.paddr:#x} ({size} TLB page) · ")
        tail.append(f"walk ≈{v.cycles:,} cycles")
        if v.assist:
            tail.append(" · D-bit assist re-walk")
        out.append_text(tail)
        if v.faulted:
            counts: dict[str, int] = {}
            for f in v.faulted:
                name = FAULT_NAMES.get(f.kind, f.kind)
                counts[name] = counts.get(name, 0) + 1
            kinds = ", ".join(f"{k} ×{n}" if n > 1 else k for k, n in counts.items())
            out.append(f"\nafter {len(v.faulted)} faulted walk{'s' if len(v.faulted) > 1 else ''} "
                       f"({kinds}): see Events", style=self._style("walk--fault"))
