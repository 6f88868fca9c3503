"""Backing guest memory: the host page behind a guest frame is allocated, and charged, once, inside
whichever fault first needs it, in shadow paging as in nested paging (KVM: kvm_faultin_pfn ->
hva_to_pfn in both FNAME(page_fault) and kvm_tdp_page_fault)."""

from __future__ import annotations

import numpy as np

from machine_helpers import BASE, cfg_from
from rvi_tui.engine.machine import Machine
from rvi_tui.workloads import ops as O

PAGE = 4096


def machine(mode: str = "shadow", **overrides) -> Machine:
    return Machine(mode, cfg_from({"guest.mem_gib": 1, **overrides}))


# --- backing guest memory: the same allocation in both virtualized modes -------------------------------
def test_each_host_page_is_allocated_once_and_charged_the_same_in_shadow_and_nested():
    stream = O.concat([O.mmap(1, BASE, 1 << 20, huge=False), O.accesses(BASE + PAGE * np.arange(4),
                                                                          rw=O.WRITE)])
    counts = {}
    for mode in ("shadow", "nested"):
        m = machine(mode)
        m.run(stream)
        counts[mode] = m.counters()
    # four guest tables (root to leaf) and four data pages, in both modes
    assert counts["shadow"]["host_page_allocs"] == counts["nested"]["host_page_allocs"] == 8
    assert counts["nested"]["exit_npf"] == 8
    cfg = cfg_from({})
    handlers = {"shadow_fault": "shadow_fill", "guest_pf_inject": "inject", "pt_write": "pt_write",
                "dirty_track": "dirty", "cr3_write": "cr3", "invlpg": "invlpg", "npf": "npf"}
    for mode, c in counts.items():
        work = sum(c["exit_" + r] * cfg[f"cost.{h}_handler"] for r, h in handlers.items())
        assert c["cyc_hypervisor"] == work + 8 * cfg["cost.host_page_alloc"], mode


# --- a nested page fault, as kvm_mmu_page_fault counts it ------------------------------------------------
def test_nested_page_faults_are_taken_and_fixed():
    m = machine("nested")
    m.run(O.concat([O.mmap(1, BASE, 1 << 20, huge=False), O.accesses([BASE, BASE + PAGE], rw=O.WRITE)]))
    c = m.counters()
    assert c["pf_taken"] == c["pf_fixed"] == c["exit_npf"] > 0 and c["pf_emulate"] == 0
