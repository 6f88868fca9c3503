"""The study: workloads x paging modes x page sizes, the table of VMware's RVI paper.

MMU-intensive workloads (process creation, mmap churn, context switches)
against a TLB-intensive one, each with 4 KiB pages and with 2 MiB pages in
guest and host, all three modes in lockstep on the same stream.
"""

from __future__ import annotations

from collections.abc import Callable

from ..workloads.registry import make_workload
from . import config as C
from .report import summarize
from .session import ALL_MODES, Session

# (workload, parameters, what it stands for): each sized so that the mechanism it illustrates runs in
# every cell, and the whole study in a few minutes. tlbstress's heap spans 16 GiB, one 4 KiB page used per
# MiB: 8,192 large pages against the L2 TLB's 3,072 entries, so 2 MiB pages still miss the TLB and walk.
WORKLOADS = (
    ("kcompile", {"jobs": 60}, "MMU-intensive: fork/exec/exit of short processes"),
    ("mmapchurn", {}, "MMU-intensive: mmap, touch, munmap"),
    ("webserver", {}, "process pool, context switches"),
    ("tlbstress", {"footprint": 16 << 30, "spread": 256, "accesses": 2_000_000},
     "TLB-intensive: random reads over a 16 GiB heap"),
)
PAGE_CONFIGS = (("4k", "4k"), ("2m", "2m"))


def run_study(preset: str = C.DEFAULT_PRESET, sets=(), workloads=None, seed: int = 1,
              progress: Callable[[str], None] | None = None) -> list[dict]:
    """One row per (workload, page sizes): the summary of every mode."""
    rows = []
    chosen = [w for w in WORKLOADS if workloads is None or w[0] in workloads]
    for name, params, role in chosen:
        for guest_page, host_page in PAGE_CONFIGS:
            if progress:
                progress(f"{name} {guest_page}/{host_page}")
            config = C.load(preset, sets, overrides={"guest.page": guest_page, "host.page": host_page})
            workload = make_workload(name, seed=seed, **params)
            session = Session(workload.chunks(), config, ALL_MODES)
            warmup = workload.warmup_ops
            if warmup:  # count the steady state, not the heap's initialisation
                session.run(warmup)
                session.reset_counters()
            session.run_to_end()
            summary = summarize(session.counters())
            shadow, nested = summary["shadow"]["cycles"], summary["nested"]["cycles"]
            rows.append({
                "workload": name,
                "role": role,
                "guest_page": guest_page,
                "host_page": host_page,
                "ops": session.ops_done,
                "modes": summary,
                "nested_vs_shadow": shadow / nested - 1 if nested else None,
            })
    return rows
