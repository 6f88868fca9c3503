"""The timeline strip: one line showing where in the run the screen is, and where the searched kind of event occurs."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from ._lines import RichLines


def strip_cells(width: int, ops_done: int, frontier: int, total: int | None, buckets, bucket_ops: int) -> str:
    """The strip as `width` characters: `│` where a column's ops hold an event of the searched kind, `─` ops run
    without one (or with no kind chosen), `┄` ops not run yet, `●` the op on screen. Pure, for tests."""
    if width <= 0:
        return ""
    end = max(total or 0, frontier, ops_done, 1)
    cells = []
    for col in range(width):
        lo, hi = end * col // width, end * (col + 1) // width
        if lo >= frontier:
            cells.append("┄")
            continue
        hit = False
        if buckets is not None and len(buckets):
            b_lo, b_hi = lo // bucket_ops, max(lo // bucket_ops + 1, -(-hi // bucket_ops))
            hit = bool(buckets[b_lo:b_hi].any())
        cells.append("│" if hit else "─")
    at = min(width - 1, ops_done * width // end)
    cells[at] = "●"
    return "".join(cells)


class TimelineStrip(RichLines, Widget):
    """`op 41,210 ·····●···│··· walk ≥20 refs`: the run from op 0 to its end (or as far as it has gone)."""

    COMPONENT_CLASSES = {"timeline--hit", "timeline--here", "timeline--dim"}
    DEFAULT_CSS = """
    TimelineStrip { height: 1; background: $panel; color: $text-muted; }
    TimelineStrip > .timeline--hit { color: $text-warning; text-style: bold; }
    TimelineStrip > .timeline--here { color: $text-accent; text-style: bold; }
    TimelineStrip > .timeline--dim { color: $text-disabled; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.data: tuple = (0, 0, None, None, "", 1024)

    def show(self, ops_done: int, frontier: int, total: int | None, buckets, label: str, bucket_ops: int) -> None:
        data = (ops_done, frontier, total, buckets, label, bucket_ops)
        if data[:3] + data[4:] != self.data[:3] + self.data[4:] or _changed(buckets, self.data[3]):
            self.data = data
            self.refresh()

    def render(self) -> Text:
        ops_done, frontier, total, buckets, label, bucket_ops = self.data
        head = f" op {ops_done:,} "
        tail = f" n/N: {label} " if label else " k picks an event kind for n/N "
        width = max(0, self.size.width - len(head) - len(tail))
        text = Text(head, no_wrap=True, overflow="ellipsis")
        st = self.get_component_rich_style
        for ch in strip_cells(width, ops_done, frontier, total, buckets, bucket_ops):
            style = {"│": st("timeline--hit"), "●": st("timeline--here"), "┄": st("timeline--dim")}.get(ch, "")
            text.append(ch, style)
        text.append(tail)
        return text


def _changed(a, b) -> bool:
    if a is None or b is None:
        return a is not b
    return len(a) != len(b) or bool((a != b).any())
