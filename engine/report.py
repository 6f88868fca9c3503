"""Summaries of a run: the figures `rvi-tui report` prints and writes as JSON.

A pure function of the counters, so the CLI, the TUI and the tests all
derive every figure the same way.
"""

from __future__ import annotations

from .counters import CYCLE_PARTS, EXIT_REASONS, KVM_NAMES


def _ratio(a: int, b: int) -> float:
    return a / b if b else 0.0


def mode_summary(c: dict[str, int], native_cycles: int | None) -> dict:
    cycles = total_cycles_of(c)
    accesses = c["accesses"]
    return {
        "accesses": accesses,
        "cycles": cycles,
        "cycles_per_access": _ratio(cycles, accesses),
        "cycles_breakdown": {p[4:]: c[p] for p in CYCLE_PARTS},
        "tlb": {
            "l1_hits": c["tlb_l1_hits"],
            "l2_hits": c["tlb_l2_hits"],
            "misses": c["tlb_misses"],
            "miss_rate": _ratio(c["tlb_misses"], accesses),
        },
        "walks": c["walks"],
        "walk_refs": c["walk_refs"],
        "walk_refs_per_walk": _ratio(c["walk_refs"], c["walks"]),
        "guest_refs": c["guest_refs"],
        "nested_refs": c["nested_refs"],
        "faulted_walks": c["faulted_walks"],
        "faulted_walk_refs": c["faulted_walk_refs"],
        "assist_walks": c["assist_walks"],
        "assist_walk_refs": c["assist_walk_refs"],
        "pwc_hits": c["pwc_hits"],
        "nwc_hits": c["nwc_hits"],
        "ntlb_hits": c["ntlb_hits"],
        "refs_served": {"l1d": c["refs_l1d"], "l2": c["refs_l2"], "l3": c["refs_l3"], "dram": c["refs_dram"],
                        "flat": c["refs_mem"]},
        "exits": {"total": c["exits"], "by_reason": {r: c["exit_" + r] for r in EXIT_REASONS}},
        # KVM's statistics under KVM's names and meanings (counters.KVM_MEANINGS), then the model's own
        "kvm": {k: c[k] for k in KVM_NAMES} | {"hv_walk_refs": c["hv_walk_refs"],
                                                "host_page_allocs": c["host_page_allocs"]},
        "guest": {k: c[k] for k in ("guest_pf", "cow_faults", "zero_page_maps", "pte_writes", "ctx_switches",
                                    "forks", "execs", "proc_exits", "mmaps", "munmaps", "guest_tlb_flushes",
                                    "guest_invlpgs")},
        # None with no native cycles to compare with (native itself, or nothing run yet): not 0.0
        "overhead_vs_native": (cycles - native_cycles) / native_cycles if native_cycles else None,
    }


def summarize(counters: dict[str, dict[str, int]], shown=None) -> dict[str, dict]:
    """Per-mode summaries for the modes in `shown` (all by default); overhead relative to native."""
    native = counters.get("native")
    native_cycles = total_cycles_of(native) if native else None
    out = {}
    for mode in shown or counters:
        base = None if mode == "native" else native_cycles
        out[mode] = mode_summary(counters[mode], base)
    return out


def total_cycles_of(c: dict[str, int]) -> int:
    return sum(c[p] for p in CYCLE_PARTS)


