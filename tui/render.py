"""Rich renderings of the headless commands' results (report, study, bench, config)."""

from __future__ import annotations

import contextlib
import time

from rich.console import Console
from rich.table import Table

from ..engine import hardware

MODES = ("native", "shadow", "nested")


def _console(out, width: int = 100) -> Console:
    return Console(file=out, highlight=False, soft_wrap=False, width=max(width, Console(file=out).width))


def _pct(x) -> str:
    return "—" if x is None else f"{x * 100:+.1f}%"


def workload_list(items, out) -> None:
    table = Table("workload", "what it does", box=None, pad_edge=False)
    for name, description in items:
        table.add_row(name, description)
    _console(out).print(table)


def config_table(config, out) -> None:
    table = Table("key", "value", title=f"preset {config.preset}", box=None)
    for key in config:
        table.add_row(key, repr(config[key]))
    _console(out).print(table)


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
    row("overhead vs native", lambda s: _pct(s["overhead_vs_native"]))
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
    table = Table(title="cycles per access by mode (overhead vs native) · nested vs shadow = shadow/nested − 1",
                  caption="to compare with VMware's RVI study: nested paging wins MMU-intensive work, loses "
                          "TLB-intensive work with small pages, and large pages recover that loss. TLB misses per "
                          "1,000 accesses and references per walk are given native / shadow / nested")
    for col in ("workload", "pages g/h", "native", "shadow", "nested", "nested vs shadow", "misses/1k", "refs/walk"):
        table.add_column(col, justify="left" if col in ("workload", "pages g/h") else "right")
    for r in rows:
        m = r["modes"]
        cell = lambda mode: f"{m[mode]['cycles_per_access']:.1f} ({_pct(m[mode]['overhead_vs_native'])})"
        per_mode = lambda f: " / ".join(f(m[mode]) for mode in ("native", "shadow", "nested"))
        table.add_row(r["workload"], f"{r['guest_page']}/{r['host_page']}", f"{m['native']['cycles_per_access']:.1f}",
                      cell("shadow"), cell("nested"), _pct(r["nested_vs_shadow"]),
                      per_mode(lambda s: f"{1000 * s['tlb']['miss_rate']:.0f}"),
                      per_mode(lambda s: f"{s['walk_refs_per_walk']:.1f}"))
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
def progress(err, label: str):
    """A one-line progress counter on a terminal's stderr; silent otherwise."""
    if not err.isatty():
        yield lambda n: None
        return
    done = [0]
    start = time.monotonic()

    def tick(n: int) -> None:
        done[0] += n
        kernels = hardware.status()
        note = "" if kernels.compiled else f" ({kernels.describe()})"
        print(f"\r{label}: {done[0]:,} ops, {time.monotonic() - start:.1f} s{note}\x1b[K", end="", file=err,
              flush=True)

    try:
        yield tick
    finally:
        print("\r" + " " * 60 + "\r", end="", file=err, flush=True)
