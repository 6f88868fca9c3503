"""Rich renderings of the headless commands' results (report, study, bench, config)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from ..engine import hardware

MODES = ("native", "shadow", "nested")


def _console(out, width: int = 100) -> Console:
    return Console(file=out, highlight=False, soft_wrap=False, width=max(width, Console(file=out).width))


def _pct(x) -> str:
    return "—" if x is None else f"{round(x * 100, 1) + 0.0:+.1f}%"  # never "-0.0%"


def workload_list(items, out) -> None:
    """(name, description, 'key=default …') rows: every built-in workload with its parameters' defaults."""
    table = Table("workload", "what it does", "parameters (defaults; --param key=value)", box=None, pad_edge=False)
    for name, description, params in items:
        table.add_row(name, description, params)
    _console(out).print(table)


def config_table(config, sources: dict, out) -> None:
    """Every key, its value and where that comes from (the preset's citation, tagged [V]erified, [S]econdary,
    [U]nverified or [D]erived, or the option that set it)."""
    table = Table("key", "value", "source", title=f"preset {config.preset}", box=None,
                  caption="tags: [V] verified at the source, [S] secondary, [U] unverified, [D] derived or modelled")
    previous = None
    for key in config:
        source = sources.get(key) or "(no source given in the preset)"
        table.add_row(key, repr(config[key]), "〃 (as above)" if source == previous else source)
        previous = source
    _console(out, 140).print(table)


def report(meta: dict, summary: dict, out) -> None:
    modes = list(summary)
    warm = f" (first {meta['warmup_ops']:,} not counted)" if meta.get("warmup_ops") else ""
    table = Table(title=f"{meta['workload']}: {meta['ops']:,} ops{warm} · {meta['preset']} · guest {meta['guest_page']} "
                        f"/ host {meta['host_page']} pages · {meta['levels']}-level",
                  caption=meta["description"])
    table.add_column("")
    for m in modes:
        table.add_column(m, justify="right")

    def row(label, fn):
        table.add_row(label, *(fn(summary[m]) for m in modes))

    row("accesses", lambda s: f"{s['accesses']:,}")
    row("cycles / access", lambda s: f"{s['cycles_per_access']:.1f}")
    row("vs native (+ = slower)", lambda s: _pct(s["overhead_vs_native"]))
    row("TLB L1 hits", lambda s: f"{s['tlb']['l1_hits']:,}")
    row("TLB L2 hits", lambda s: f"{s['tlb']['l2_hits']:,}")
    row("TLB misses", lambda s: f"{s['tlb']['misses']:,} ({s['tlb']['miss_rate'] * 100:.1f}%)")
    row("walks", lambda s: f"{s['walks']:,}")
    row("refs / walk", lambda s: f"{s['walk_refs_per_walk']:.2f}")
    row("PWC hits", lambda s: f"{s['pwc_hits']:,}")
    if any(summary[m]["nwc_hits"] or summary[m]["ntlb_hits"] for m in modes):  # the nested walk's caches
        row("NWC hits", lambda s: f"{s['nwc_hits']:,}")
        row("NTLB hits", lambda s: f"{s['ntlb_hits']:,}")
    row("faulted walk refs", lambda s: f"{s['faulted_walk_refs']:,}")
    row("VM exits", lambda s: f"{s['exits']['total']:,}")
    for reason in next(iter(summary.values()))["exits"]["by_reason"]:
        if any(summary[m]["exits"]["by_reason"][reason] for m in modes):
            row(f"  {reason}", lambda s, r=reason: f"{s['exits']['by_reason'][r]:,}")
    for key in ("pf_taken", "pf_fixed", "pf_emulate", "pf_guest", "mmu_pte_write", "mmu_pde_zapped", "mmu_unsync",
                "mmu_shadow_zapped", "mmu_flooded", "tlb_flush", "invlpg"):
        if any(summary[m]["kvm"][key] for m in modes):
            row(f"kvm {key}", lambda s, k=key: f"{s['kvm'][k]:,}")
    row("guest page faults", lambda s: f"{s['guest']['guest_pf']:,}")
    parts = next(iter(summary.values()))["cycles_breakdown"]
    for part in parts:
        row(f"cycles: {part}", lambda s, p=part: f"{s['cycles_breakdown'][p]:,}")
    _console(out).print(table)


def _axis_value(row: dict, axis: str) -> str:
    return f"{row.get('guest.page')}/{row.get('host.page')}" if axis == "pages" else str(row.get(axis))


def _spread(values: list[float], fmt) -> str:
    """The mean, and with several seeds half the range after ±."""
    mean = sum(values) / len(values)
    if len(values) == 1:
        return fmt(mean)
    return f"{fmt(mean)} ±{fmt((max(values) - min(values)) / 2).lstrip('+')}"


def sweep_groups(results: list[dict], swept) -> list[tuple[tuple, dict[str, list[dict]]]]:
    """Cells that differ only by seed, grouped in the order first met: (label values, {mode: [rows]})."""
    groups: dict[tuple, dict[str, list[dict]]] = {}
    for r in results:
        for row in r["rows"]:
            label = (row["workload"], *(_axis_value(row, a) for a in swept))
            groups.setdefault(label, {}).setdefault(row["mode"], []).append(row)
    return list(groups.items())


def study(results: list[dict], swept, out, title_note: str = "") -> None:
    _console(out, width=140).print(study_table(results, swept, title_note))
    for r in results:
        if r["error"]:
            _console(out).print(f"[red]failed[/red] {r['command']}: {r['error']}")


def study_table(results: list[dict], swept, title_note: str = "") -> Table:
    """The sweep's table: cycles per access by mode with overhead vs native, nested vs shadow, TLB misses per
    1,000 accesses and references per walk; with several seeds, means ± half their range."""
    table = Table(title="cycles per access by mode (overhead vs native) · nested vs shadow = nested/shadow − 1 · "
                        "every percentage: + = more cycles than the mode compared with (slower)" + title_note,
                  caption="misses/1k and refs/walk: native / shadow / nested. Every row: " + "; ".join(
                      dict.fromkeys(_reproduce(r, swept) for r in results if r["rows"])))
    for col in ("workload", *("pages g/h" if a == "pages" else a for a in swept), "native", "shadow", "nested",
                "nested vs shadow", "misses/1k", "refs/walk"):
        table.add_column(col, justify="right" if col in ("native", "shadow", "nested", "nested vs shadow",
                                                         "misses/1k", "refs/walk") else "left")
    for label, by_mode in sweep_groups(results, swept):
        def per(mode, key):
            return [row[key] for row in by_mode.get(mode, []) if row.get(key) is not None]

        def cell(mode):
            if mode not in by_mode:
                return "—"
            cpa = _spread(per(mode, "cycles_per_access"), lambda v: f"{v:.1f}")
            if mode == "native":
                return cpa
            return f"{cpa} ({_spread(per(mode, 'overhead_vs_native'), _pct)})"

        if "shadow" in by_mode and "nested" in by_mode:
            ratio = [n["cycles"] / s["cycles"] - 1 for s, n in zip(by_mode["shadow"], by_mode["nested"]) if s["cycles"]]
            nvs = _spread(ratio, _pct) if ratio else "—"
        else:
            nvs = "—"
        shown = [m for m in MODES if m in by_mode]
        misses = " / ".join(f"{1000 * sum(per(m, 'tlb.miss_rate')) / len(per(m, 'tlb.miss_rate')):.0f}" for m in shown)
        refs = " / ".join(f"{sum(per(m, 'walk_refs_per_walk')) / len(per(m, 'walk_refs_per_walk')):.1f}" for m in shown)
        table.add_row(*label, cell("native"), cell("shadow"), cell("nested"), nvs, misses, refs)
    return table


def _reproduce(result: dict, swept) -> str:
    """A cell's report command with the swept settings left out: the row's own values complete it."""
    skip = {"guest.page", "host.page"} if "pages" in swept else set(swept)
    parts = [p for p in result["command"].split(" --") if p.split(" ")[-1].split("=")[0] not in skip
             and not p.startswith("seed ")]
    return " --".join(parts)


def bench(results: dict, modes, out) -> None:
    runs = results.get("repeat", 1)
    fastest = f", the fastest of {runs} runs each" if runs > 1 else ""
    table = Table(title=f"engine throughput, accesses/s{fastest} ({results['config']}; TLB: {results['geometry']})",
                  caption="Each mode is timed after an untimed warm-up that faults every page in; the hardware "
                          "starts cold. Bare kernels: the least a model can do, as plain compiled code with "
                          "nothing else: the TLB only, the TLB with a page walk on each miss (native's bound), and "
                          "with a 2D walk (nested paging's). ×: against pycachesim. counts: every TLB hit and miss "
                          "count equals pycachesim's.")
    table.add_column("stream", no_wrap=True)
    table.add_column("pycachesim", justify="right", no_wrap=True)
    refs = ("tlb_only", "tlb_walk", "tlb_walk_2d")
    table.add_column("bare TLB", justify="right", no_wrap=True)
    table.add_column("bare walk", justify="right", no_wrap=True)
    table.add_column("bare 2D walk", justify="right", no_wrap=True)
    for m in modes:
        table.add_column(m, justify="right", no_wrap=True)
    table.add_column("counts", justify="center")
    for name, row in results["streams"].items():
        base = row.get("pycachesim")

        def cell(key):
            if key not in row:
                return "—"
            rate = row[key]["accesses_per_s"]
            text = f"{rate / 1e6:.1f}M"
            return text + (f" {rate / base['accesses_per_s']:.1f}×" if base else "")

        same = "—"
        if base:
            same = "yes" if all((row[k]["l1_hits"], row[k]["l2_hits"], row[k]["misses"]) ==
                                (base["l1_hits"], base["l2_hits"], base["misses"])
                                for k in (*refs, *modes) if k in row) else "NO"
        table.add_row(name, f"{base['accesses_per_s'] / 1e6:.1f} M" if base else "not installed",
                      *(cell(k) for k in refs), *(cell(m) for m in modes), same)
    console = _console(out, 120)
    console.print(table)
    bounds = []  # each mode against the bare walker of its walk: 1D for native and shadow, 2D for nested
    for name, row in results["streams"].items():
        cells = []
        for m in modes:
            bare = "tlb_walk_2d" if m == "nested" else "tlb_walk"
            if bare in row:
                cells.append(f"{m} {row[m]['accesses_per_s'] / row[bare]['accesses_per_s']:.2f}×")
        if cells:
            bounds.append(f"{name} " + " ".join(cells))
    if bounds:
        console.print("against the bare walker of their walk: " + " · ".join(bounds))
    faults = results["faults"]
    console.print(f"page faults ({faults['what']}{fastest}): " + "; ".join(
        f"{m} {faults[m]['us_per_fault']:.2f} µs a fault ({faults[m]['faults_per_s'] / 1e6:.2f} M/s, "
        f"{faults[m]['exits'] / faults[m]['faults']:.1f} exits a fault)" for m in modes))
    console.print(f"lackey parsing: {results['lackey_parse_lines_per_s'] / 1e6:.1f} M lines/s")


@contextlib.contextmanager
def progress(err, label: str, total: Callable[[], int | None] = lambda: None, unit: str = "ops"):
    """A Rich progress line on a terminal's stderr, gone when done: what runs, how far (a bar and the time
    left once ``total()`` knows the end), the time so far; nothing when stderr is piped or redirected.

    Yields ``tick(n, what=None)``: n more done, and ``what`` (if given) the new description.
    """
    if not err.isatty():
        yield lambda n, what=None: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(bar_width=20),
                   TextColumn("{task.completed:,.0f}{task.fields[of]} " + unit), TimeElapsedColumn(),
                   TextColumn("· left"), TimeRemainingColumn(), console=Console(file=err), transient=True,
                   refresh_per_second=4)
    task = bar.add_task(label, total=None, of="")
    shown = [label]

    def tick(n: int, what: str | None = None) -> None:
        if what:
            shown[0] = what
        kernels = hardware.status()
        note = "" if kernels.compiled else f" ({kernels.describe()})"
        end = total()
        bar.update(task, advance=n, total=end, of=f" of {end:,}" if end else "", description=shown[0] + note)

    with bar:
        yield tick


class _SweepBar:
    """Cells done of all, cells running, elapsed and ETA, on a terminal's stderr (Rich); silent when piped."""

    def __init__(self, progress, total: int, done: int):
        self.progress, self.running = progress, 0
        self.task = progress.add_task("study", total=total, completed=done, running=0) if progress else None

    def started(self, cell) -> None:
        self.running += 1
        if self.progress:
            self.progress.update(self.task, running=self.running, description=f"study · {cell.workload}")

    def finished(self, result) -> None:
        self.running = max(0, self.running - 1)
        if self.progress:
            self.progress.update(self.task, advance=1, running=self.running)


@contextlib.contextmanager
def sweep_progress(err, total: int, done: int = 0):
    if not err.isatty():
        yield _SweepBar(None, total, done)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("cells"),
               TextColumn("· {task.fields[running]} running"), TimeElapsedColumn(), TextColumn("ETA"),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(file=err), transient=True) as progress:
        yield _SweepBar(progress, total, done)


def comparison(base: dict, other: dict, label: str, out) -> None:
    """The same workload run twice: per mode, the first run, the second and the change."""
    table = Table(title=f"with {label}: the second run beside the first (change = second / first − 1)")
    table.add_column("")
    for m in base:
        table.add_column(m, justify="right")

    def row(name, fn, fmt):
        cells = []
        for m in base:
            a, b = fn(base[m]), fn(other[m])
            change = _pct(b / a - 1) if a else "—"
            cells.append(f"{fmt(a)} → {fmt(b)} ({change})")
        table.add_row(name, *cells)

    row("cycles / access", lambda s: s["cycles_per_access"], lambda v: f"{v:.1f}")
    row("TLB misses", lambda s: s["tlb"]["misses"], lambda v: f"{v:,}")
    row("refs / walk", lambda s: s["walk_refs_per_walk"], lambda v: f"{v:.2f}")
    row("VM exits", lambda s: s["exits"]["total"], lambda v: f"{v:,}")
    table.add_row("overhead vs native", *(f"{_pct(base[m]['overhead_vs_native'])} → {_pct(other[m]['overhead_vs_native'])}"
                                          for m in base))
    _console(out).print(table)
