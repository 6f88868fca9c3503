"""Counters pane: the three modes side by side, in lockstep on the same op stream.

In the manner of kvm_stat: a total and a current rate per counter ('now' is
per second for counts and over the last second for ratios), rows that are zero
in every mode left out, and a sparkline of cycles per access per mode on one
shared log scale, so the modes' levels compare at a glance.
"""

from __future__ import annotations

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widget import Widget

from rvi_tui.engine.counters import EXIT_REASONS

from .. import fmt
from ._border import TitledPane, set_subtitle, set_title
from ._lines import RichLines, padded

MODES = ("native", "shadow", "nested")
KVM_ROWS = ("pf_taken", "pf_fixed", "pf_emulate", "pf_guest", "mmu_pte_write", "mmu_pde_zapped",
            "mmu_shadow_zapped", "mmu_flooded", "mmu_unsync", "mmu_cache_miss", "mmu_recycled", "tlb_flush",
            "invlpg")
GAUGES = {"mmu_unsync"}  # a level, not a count: no rate
LABEL_W = 14
TOTAL_W = 7  # totals are at most 6 characters: one space always separates the columns
NOW_W = 6
EXIT_LABELS = {"guest_pf_inject": "pf_inject"}


def _get(summary: dict, path: str):
    v = summary
    for part in path.split("."):
        v = v[part]
    return v


# (label, path into a summary, kind): kind 'count' (now = per second), 'gauge' (a level: no rate), 'ratio',
# 'pct', 'overhead'
MAIN_ROWS = (
    ("accesses", "accesses", "count"),
    ("cycles/access", "cycles_per_access", "ratio"),
    # the cycle breakdown, per access: the six parts add up to cycles/access
    (" base", "cycles_breakdown.base", "per_access"),
    (" TLB", "cycles_breakdown.tlb", "per_access"),
    (" walk", "cycles_breakdown.walk", "per_access"),
    (" guest OS", "cycles_breakdown.guest_os", "per_access"),
    (" VM exits", "cycles_breakdown.exit", "per_access"),
    (" hypervisor", "cycles_breakdown.hypervisor", "per_access"),
    ("vs native", "overhead_vs_native", "overhead"),
    ("TLB miss rate", "tlb.miss_rate", "pct"),
    ("walks", "walks", "count"),
    ("refs/walk", "walk_refs_per_walk", "ratio"),
    ("VM exits", "exits.total", "count"),
)
# The rows a pinned baseline shows: its value ('total' column) and this run's change ('now' column); the
# overhead's change is in percentage points
PINNED_ROWS = (
    ("cycles/access", "cycles_per_access", "ratio"),
    ("vs native", "overhead_vs_native", "overhead"),
    ("TLB miss rate", "tlb.miss_rate", "pct"),
    ("refs/walk", "walk_refs_per_walk", "ratio"),
)
# A ratio over nothing is shown as a dash, not as 0: the count each ratio row divides by.
DIVIDED_BY = {"cycles_per_access": "accesses", "tlb.miss_rate": "accesses", "walk_refs_per_walk": "walks"}
SPARK_LINES = 4  # the sparklines' heading and one line per mode
SPARK_ROOM = SPARK_LINES + 2 + len(MAIN_ROWS)  # rows a pane needs to show the sparklines and the main rows


class CountersBody(RichLines, Widget):
    COMPONENT_CLASSES = {"ctr--head", "ctr--mode", "ctr--now", "ctr--section", "ctr--spark", "ctr--muted",
                         "ctr--best", "ctr--worst"}
    DEFAULT_CSS = """
    CountersBody { height: auto; text-wrap: nowrap; text-overflow: ellipsis; }
    CountersBody > .ctr--head { color: $text-muted; text-style: bold; }
    CountersBody > .ctr--mode { color: $text-primary; text-style: bold; }
    CountersBody > .ctr--now { color: $text-muted; }
    CountersBody > .ctr--section { color: $text-secondary; text-style: bold; }
    CountersBody > .ctr--spark { color: $text-accent; }
    CountersBody > .ctr--muted { color: $text-muted; }
    CountersBody > .ctr--best { color: $text-success; text-style: bold; }
    CountersBody > .ctr--worst { color: $text-error; text-style: bold; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.total: dict | None = None
        self.now: dict | None = None
        self.dt = 0.0
        self.sparks: dict = {}
        self.viewed = "nested"
        self.note = "waiting for the engine…"
        self.pinned: tuple[str, dict] | None = None
        self._rows = 0  # the most lines the table had this run

    def show(self, total: dict | None, now: tuple | None, sparks: dict, viewed: str, note: str = "",
             pinned: tuple[str, dict] | None = None) -> None:
        if (pinned is None) != (self.pinned is None):
            self._rows = 0  # the pinned rows come or go: the table's height changes anyway
        self.pinned = pinned
        self.total = total
        self.now, self.dt = (now if now else (None, 0.0))
        self.sparks = sparks
        self.viewed = viewed
        self.note = note
        text = self._build()
        old = getattr(self, "_text", None)
        if old is not None and text == old:
            return
        relayout = old is None or text.plain.count("\n") != old.plain.count("\n")
        self._text = text
        self.refresh(layout=relayout)

    def on_resize(self) -> None:
        self.rebuild()  # the 'now' columns depend on the width

    def rebuild(self) -> None:
        """Lay the text out again for the pane's size (a resize while paused brings no new frame)."""
        self._text = self._build()
        self.refresh(layout=True)

    def st(self, name):
        return self.get_component_rich_style(name)

    def render(self) -> Text:
        text = getattr(self, "_text", None)
        return text if text is not None else self._build()

    def _build(self) -> Text:
        if not self.total:
            self._rows = 0
            return Text(self.note, style=self.st("ctr--muted"))
        width = self.size.width or 58
        show_now = width >= LABEL_W + 3 * (TOTAL_W + NOW_W)
        out = Text(no_wrap=True, overflow="ellipsis")
        room = self.parent.size.height if self.parent is not None else SPARK_ROOM
        if room >= SPARK_ROOM:  # a short pane gives up the sparklines first: the table says the same
            self._sparklines(out, width)
        # header
        cell_w = TOTAL_W + (NOW_W if show_now else 0)
        out.append(f"{'':<{LABEL_W}}")
        for m in MODES:
            style = self.st("ctr--mode") if m == self.viewed else self.st("ctr--head")
            if show_now:
                name = f"▸{m}" if m == self.viewed else m
                out.append(f"{name:^{cell_w}}", style=style)
            else:  # no room for the marker: the viewed mode in capitals, as the status line names it
                out.append(f"{m.upper() if m == self.viewed else m:>{cell_w}}", style=style)
        out.append("\n")
        if show_now:
            out.append(f"{'':<{LABEL_W}}")
            for _ in MODES:
                out.append(f"{'total':>{TOTAL_W}}{'now':>{NOW_W}}", style=self.st("ctr--head"))
            out.append("\n")
        for label, path, kind in MAIN_ROWS:
            self._row(out, label, path, kind, show_now, highlight=kind in ("ratio",) and path == "cycles_per_access")
        reasons = [r for r in EXIT_REASONS if any(self.total[m]["exits"]["by_reason"][r] for m in self.total)]
        for r in reasons:
            self._row(out, f" {EXIT_LABELS.get(r, r)}", f"exits.by_reason.{r}", "count", show_now)
        kvm = [k for k in KVM_ROWS if any(self.total[m]["kvm"][k] for m in self.total)]
        if kvm:
            out.append("kvm_stat (mmu_* names without mmu_)\n", style=self.st("ctr--section"))
            for k in kvm:
                self._row(out, f" {k.removeprefix('mmu_')}", f"kvm.{k}", "gauge" if k in GAUGES else "count",
                          show_now)
        if any(self.total[m]["guest"]["guest_pf"] for m in self.total):
            self._row(out, "guest #PF", "guest.guest_pf", "count", show_now)
        if self.pinned:
            self._pinned(out, show_now)
        out.rstrip()
        # never fewer lines than before in this run: a row that comes and goes (a kvm gauge back at 0) changed the
        # body's height, which re-lays out and repaints the whole screen
        self._rows = max(self._rows, out.plain.count("\n"))
        return padded(out, self._rows + 1)

    def _pinned(self, out: Text, show_now: bool) -> None:
        """The pinned run's figures, and this run's change against them (this / pinned − 1)."""
        label, base = self.pinned
        out.append(f"pinned: {label}\n", style=self.st("ctr--section"))
        for name, path, kind in PINNED_ROWS:
            out.append(f"{name[:LABEL_W]:<{LABEL_W}}")
            for m in MODES:
                cell_w = TOTAL_W + (NOW_W if show_now else 0)
                if m not in self.total or m not in base:
                    out.append(" " * cell_w)
                    continue
                then, now = _get(base[m], path), _get(self.total[m], path)
                over = DIVIDED_BY.get(path)
                if kind == "overhead":
                    then_s = "—" if then is None else fmt.signed_percent(then, True)
                    change = "" if then is None or now is None else fmt.signed_percent(now - then, True)
                else:
                    then_s = "—" if over and not base[m][over] else self._fmt(kind, then, base[m])
                    change = fmt.signed_percent(now / then - 1, True) if then and not (over and not self.total[m][over]) else ""
                out.append(f"{then_s:>{TOTAL_W}}")
                if show_now:
                    out.append(f"{(change or '·')[:NOW_W - 1]:>{NOW_W}}", style=self.st("ctr--now"))
            out.append("\n")

    def _sparklines(self, out: Text, width: int) -> None:
        series = {m: list(self.sparks.get(m, ())) for m in MODES}
        values = [v for s in series.values() for v in s if v > 0]
        out.append("cycles/access, recent · one log scale\n", style=self.st("ctr--section"))
        span = max(8, width - 7 - 10 - 1)
        lo, hi = (min(values), max(values)) if values else (1.0, 1.0)
        for m in MODES:
            s = series[m][-span:]
            style = self.st("ctr--mode") if m == self.viewed else self.st("ctr--head")
            out.append(f"{m:<7}", style=style)
            line = fmt.sparkline(s, lo, hi) if s else "·"
            out.append(f"{line:<{span}}", style=self.st("ctr--spark"))
            last = fmt.ratio(s[-1]) if s else "—"
            out.append(f"{last:>10}\n")

    def _row(self, out: Text, label: str, path: str, kind: str, show_now: bool, highlight: bool = False) -> None:
        out.append(f"{label[:LABEL_W]:<{LABEL_W}}")
        totals = {m: _get(self.total[m], path) for m in MODES if m in self.total}
        best = worst = None
        if highlight and len(totals) == 3:
            best = min(totals, key=lambda m: totals[m])
            worst = max(totals, key=lambda m: totals[m])
        for m in MODES:
            if m not in self.total:
                out.append(" " * (TOTAL_W + (NOW_W if show_now else 0)))
                continue
            over = "accesses" if kind == "per_access" else DIVIDED_BY.get(path)
            text = "—" if over and not self.total[m][over] else self._fmt(kind, totals[m], self.total[m])
            style = ""
            if best is not None and best != worst:
                style = self.st("ctr--best") if m == best else self.st("ctr--worst") if m == worst else ""
            out.append(f"{text:>{TOTAL_W}}", style=style)
            if show_now:
                now = ""
                if self.now is not None and m in self.now:
                    v = _get(self.now[m], path)
                    if kind == "gauge":
                        now = ""  # a level has no rate
                    elif kind == "count":
                        now = fmt.rate(v / self.dt) if self.dt > 0 else ""
                    else:
                        now = self._fmt(kind, v, self.now[m], short=True) if self.now[m]["accesses"] else ""
                out.append(f"{(now or '·')[:NOW_W - 1]:>{NOW_W}}", style=self.st("ctr--now"))
        out.append("\n")

    @staticmethod
    def _fmt(kind: str, v, summary: dict, short: bool = False) -> str:
        """At most 6 characters (5 with short)."""
        if kind in ("count", "gauge"):
            return fmt.count(v)
        if kind == "ratio":
            return fmt.ratio(v, 0 if short and v >= 100 else 1)
        if kind == "pct":
            return fmt.percent(v, short)
        if kind == "overhead":
            return fmt.signed_percent(v, short) if v is not None else "—"
        if kind == "per_access":
            return fmt.ratio(v / summary["accesses"], 0 if short and v >= 100 * summary["accesses"] else 1) \
                if summary["accesses"] else "—"
        return str(v)


class CountersPane(TitledPane, VerticalScroll):
    """Border and scrolling around the body."""

    DEFAULT_CSS = """
    CountersPane { scrollbar-size-vertical: 1; scrollbar-gutter: stable; }
    """

    def compose(self):
        yield CountersBody(id="counters-body")

    def on_resize(self) -> None:
        self.body.rebuild()  # the sparklines come and go with the pane's height

    @property
    def body(self) -> CountersBody:
        return self.query_one(CountersBody)

    def show(self, total, now, sparks, viewed, note: str = "", pinned=None) -> None:
        set_title(self, "Counters · all modes in lockstep on the same ops")
        set_subtitle(self, "now: counts per second, ratios over the last second"
                     + (" · pinned: its value, then the change" if pinned else ""))
        self.body.show(total, now, sparks, viewed, note, pinned)
