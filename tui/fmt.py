"""Number and address formatting shared by the panes (pure functions, no Textual)."""

from __future__ import annotations

import math

MODE_LABELS = {"native": "NATIVE", "shadow": "SHADOW", "nested": "NESTED"}
SIZE_LABELS = ("4K", "2M", "1G")


def count(n: int | float) -> str:
    """Exact with thousands separators below 100,000, then compact (123.4k, 12.35M, 1.234G)."""
    n = int(n)
    if abs(n) < 100_000:
        return f"{n:,}"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            v = n / div
            if abs(v) >= 100:
                return f"{v:.1f}{suffix}"
            return f"{v:.2f}{suffix}" if abs(v) < 10 else f"{v:.1f}{suffix}"
    return f"{n:,}"  # pragma: no cover


def rate(per_s: float | None) -> str:
    """A compact per-second rate ('' for none)."""
    if per_s is None:
        return ""
    if per_s < 0.05:
        return "0"
    if per_s < 10:
        return f"{per_s:.1f}"
    if per_s < 1000:
        return f"{per_s:.0f}"
    if per_s < 1e6:
        v = per_s / 1e3
        return f"{v:.1f}k" if v < 100 else f"{v:.0f}k"
    v = per_s / 1e6
    return f"{v:.1f}M" if v < 100 else f"{v:.0f}M"


def ratio(x: float, digits: int = 1) -> str:
    """At most 6 characters: 12.3, 901.2, 1,082, 12,345, 123.4k."""
    if x >= 1000:
        return count(round(x))
    return f"{x:,.{digits}f}"


def percent(x: float, short: bool = False) -> str:
    """0.0312 -> '3.1%' (at most 6 characters; 5 with short)."""
    v = 100.0 * x
    if v != 0 and abs(v) < 0.1:
        return "<0.1%" if v > 0 else f"{v:.1f}%"
    if abs(v) >= 99.95 and (short or abs(v) >= 999.5):
        return f"{v:.0f}%"
    return f"{v:.1f}%"


def signed_percent(x: float | None, short: bool = False) -> str:
    """+3.1%, +917%, -12%: at most 6 characters below +10,000% (5 with short, below +1,000%)."""
    if x is None:
        return "—"
    v = 100.0 * x
    if abs(v) >= 99.95 or (short and abs(v) >= 9.95):
        return f"{round(v) + 0:+d}%"
    return f"{round(v, 1) + 0.0:+.1f}%"  # a value that rounds to zero is +0.0%, never -0.0%


def hexa(n: int) -> str:
    return f"{n:#x}"


def frame_addr(frame: int) -> str:
    """A 4 KiB frame number as the physical address of its base."""
    return f"{frame << 12:#x}"


def page_label(name: str) -> str:
    """'4k' -> '4K'."""
    return name.upper()


def log_scale_levels(values: list[float], lo: float, hi: float, levels: int) -> list[int]:
    """Map values onto 0..levels-1 on a log scale between lo and hi (shared across series)."""
    if not values:
        return []
    lo = max(lo, 1e-9)
    hi = max(hi, lo)
    a, b = math.log(lo), math.log(hi)
    span = b - a
    out = []
    for v in values:
        if span <= 1e-12:
            out.append(levels // 2)
            continue
        t = (math.log(max(v, lo)) - a) / span
        out.append(min(levels - 1, max(0, int(round(t * (levels - 1))))))
    return out


SPARK_CHARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], lo: float, hi: float) -> str:
    return "".join(SPARK_CHARS[i] for i in log_scale_levels(values, lo, hi, len(SPARK_CHARS)))


def fit(text: str, width: int, sep: str = " ") -> str:
    """``text`` whole if it fits ``width`` cells, else cut at the last ``sep`` that leaves room for "…": a word,
    and so a number, is shown whole or not at all (a hex value cut mid-way would read as another value)."""
    if len(text) <= width:
        return text
    if width < 1:
        return ""
    cut = text.rfind(sep, 0, width)  # the "…" takes the separator's place
    return (text[:cut].rstrip(" ·:;,|│") if cut > 0 else "") + "…"


def fit_columns(columns: tuple[tuple[str, int], ...], width: int, gap: int = 1) -> set[str]:
    """The names of the columns to show in ``width`` cells: ``columns`` are (name, cells) in priority order,
    most essential first, taken while they fit with a ``gap`` between them (the first always is)."""
    shown: set[str] = set()
    used = -gap
    for name, cells in columns:
        if shown and used + gap + cells > width:
            break
        shown.add(name)
        used += gap + cells
    return shown
