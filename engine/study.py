"""The default study: workloads x paging modes x page sizes, the table of VMware's RVI paper.

MMU-intensive workloads (process creation, mmap churn, context switches)
against a TLB-intensive one, each with 4 KiB pages and with 2 MiB pages in
guest and host, all three modes in lockstep on the same stream. `engine.sweep` runs it, as it
runs any other grid.
"""

from __future__ import annotations


# (workload, parameters, what it stands for): each sized so that the mechanism it illustrates runs in
# every cell, and the whole study in under a minute on two cores. tlbstress's heap spans 16 GiB, one 4 KiB page used per
# MiB: 8,192 large pages against the L2 TLB's 3,072 entries, so 2 MiB pages still miss the TLB and walk.
WORKLOADS = (
    ("kcompile", {"jobs": 60}, "MMU-intensive: fork/exec/exit of short processes"),
    ("mmapchurn", {"accesses": "100k"}, "MMU-intensive: mmap, touch, munmap"),
    ("webserver", {}, "process pool, context switches"),
    ("tlbstress", {"footprint": "16g", "spread": 256, "accesses": "1m"},
     "TLB-intensive: random reads over a 16 GiB heap"),
)
PAGE_CONFIGS = (("4k", "4k"), ("2m", "2m"))
