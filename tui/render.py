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
    """+3.1%, −12.0%; a value that rounds to zero is +0.0%, never -0.0%."""
    if x is None:
        return "—"
    v = round(x * 100, 1)
    return f"{v + 0.0:+.1f}%"  # + 0.0 turns -0.0 into 0.0


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


def study(rows: list[dict], out) -> None:
    table = Table(title="cycles per access by mode (overhead vs native) · nested vs shadow = nested/shadow − 1 · "
                        "every percentage: + = more cycles than the mode compared with (slower)",
                  caption="to compare with VMware's RVI study: nested paging wins MMU-intensive work, loses "
                          "TLB-intensive work with small pages, and large pages recover that loss")
    for col in ("workload", "pages g/h", "native", "shadow", "nested", "nested vs shadow"):
        table.add_column(col, justify="left" if col in ("workload", "pages g/h") else "right")
    for r in rows:
        m = r["modes"]
        cell = lambda mode: f"{m[mode]['cycles_per_access']:.1f} ({_pct(m[mode]['overhead_vs_native'])})"
        table.add_row(r["workload"], f"{r['guest_page']}/{r['host_page']}", f"{m['native']['cycles_per_access']:.1f}",
                      cell("shadow"), cell("nested"), _pct(r["nested_vs_shadow"]))
    _console(out).print(table)


def bench(results: dict, modes, out) -> None:
    table = Table(title=f"engine throughput, accesses/s ({results['config']}; TLB: {results['geometry']})",
                  caption="Each mode is timed after an untimed warm-up that faults every page in; the hardware "
                          "starts cold. Bare kernels: the least a native model can do, as plain compiled code "
                          "with nothing else: the TLB only, and the TLB with a page walk on each miss. ×: against "
                          "pycachesim. counts: every TLB hit and miss count equals pycachesim's.")
    table.add_column("stream", no_wrap=True)
    table.add_column("pycachesim", justify="right", no_wrap=True)
    refs = ("tlb_only", "tlb_walk")
    table.add_column("bare TLB", justify="right", no_wrap=True)
    table.add_column("bare TLB+walk", justify="right", no_wrap=True)
    for m in modes:
        table.add_column(m, justify="right", no_wrap=True)
    table.add_column("counts", justify="center")
    for name, row in results["streams"].items():
        base = row.get("pycachesim")

        def cell(key):
            if key not in row:
                return "—"
            rate = row[key]["accesses_per_s"]
            text = f"{rate / 1e6:.1f} M"
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
