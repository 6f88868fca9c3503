"""Charts of a sweep's results, as files (matplotlib: SVG or PNG) and as text for the terminal.

Grouped bars of overhead against native, one group per workload and setting, one bar per virtualized
mode, as VMware's papers draw their results; a line per mode along a swept numeric axis when there is
exactly one. matplotlib is the optional extra `plot`: the standard for publication charts in both
formats, too large to make every user install it. The terminal chart needs nothing but Rich.
"""

from __future__ import annotations

import os

from rich.text import Text

from ..engine.errors import EngineError
from .render import _axis_value, sweep_groups

BAR_MODES = ("shadow", "nested")
COLOURS = {"shadow": "#d9822b", "nested": "#2b7bd9"}
FORMATS = (".svg", ".png")


def check_target(path: str) -> None:
    """Refuse an unknown format or a missing extra before a long run, in one line."""
    if not path.endswith(FORMATS):
        raise EngineError(f"--plot {path}: give a .svg or .png file")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise EngineError("--plot needs matplotlib: pip install 'rvi-tui[plot]' (or pip install '.[plot]' in a "
                          "clone)") from None


def series(results: list[dict], swept) -> tuple[list[str], dict[str, list[float]]]:
    """Group labels and, per virtualized mode, the mean overhead vs native of each group (in %)."""
    labels, values = [], {m: [] for m in BAR_MODES}
    for label, by_mode in sweep_groups(results, swept):
        labels.append(" ".join(label))
        for m in BAR_MODES:
            got = [r["overhead_vs_native"] for r in by_mode.get(m, []) if r.get("overhead_vs_native") is not None]
            values[m].append(100 * sum(got) / len(got) if got else float("nan"))
    return labels, values


def _numeric_axis(results, swept) -> list[float] | None:
    """The values of the one swept axis, if there is one and it is numeric."""
    if len(swept) != 1 or swept[0] in ("pages", "preset"):
        return None
    try:
        return sorted({float(_axis_value(row, swept[0])) for r in results for row in r["rows"]})
    except ValueError:
        return None


def save(path: str, results: list[dict], swept, caption: str) -> None:
    """Write the chart atomically (the figure is drawn into memory, then written in one go)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from ..workloads.atomic import atomic_output

    labels, values = series(results, swept)
    fig = Figure(figsize=(max(6.0, 0.9 * len(labels) + 2), 4.2), layout="constrained")
    ax = fig.add_subplot()
    xs = _numeric_axis(results, swept)
    if xs is not None:  # a line per (workload, mode) along the swept axis
        workloads = list(dict.fromkeys(label.split(" ")[0] for label in labels))
        for w in workloads:
            for m in BAR_MODES:
                pts = [(float(lab.split(" ")[1]), v) for lab, v in zip(labels, values[m]) if lab.split(" ")[0] == w]
                pts.sort()
                line, = ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=COLOURS[m],
                                linestyle="-" if workloads.index(w) % 2 == 0 else "--", label=f"{w} · {m}")
                line.set_gid(f"line-{w}-{m}")
        ax.set_xlabel(swept[0])
    else:  # grouped bars
        width = 0.8 / len(BAR_MODES)
        for k, m in enumerate(BAR_MODES):
            bars = ax.bar([i + (k - (len(BAR_MODES) - 1) / 2) * width for i in range(len(labels))], values[m],
                          width, label=m, color=COLOURS[m])
            for i, bar in enumerate(bars):
                bar.set_gid(f"bar-{m}-{i}")
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
        ax.set_xlabel("workload and " + ", ".join("guest/host pages" if a == "pages" else a for a in swept))
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylabel("overhead vs native (%)")
    ax.set_title("rvi-tui: virtualization overhead by paging mode")
    ax.legend(fontsize="small")
    fig.text(0.01, 0.005, caption, fontsize="x-small", ha="left", va="bottom")
    buf = io.BytesIO()
    fig.savefig(buf, format=os.path.splitext(path)[1][1:], dpi=120)
    with atomic_output(path) as f:
        f.write(buf.getvalue())


def terminal_bars(results: list[dict], swept, width: int = 40) -> Text:
    """The same bars as text: one line per group and mode, scaled to the largest overhead."""
    labels, values = series(results, swept)
    biggest = max([abs(v) for vs in values.values() for v in vs if v == v] + [1e-9])
    name_w = max((len(lab) for lab in labels), default=0)
    text = Text()
    for i, label in enumerate(labels):
        for m in BAR_MODES:
            v = values[m][i]
            if v != v:  # not run
                continue
            n = round(abs(v) / biggest * width)
            text.append(f"{label if m == BAR_MODES[0] else '':<{name_w}} {m:<6} ")
            text.append(("█" * n) or "▏", style=COLOURS[m])
            text.append(f" {v:+.1f}%\n")
    return text
