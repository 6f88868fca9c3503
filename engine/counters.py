"""Counter names and their slots in a machine's int64 counter array.

Names follow KVM's own statistics where KVM has one (``exits``, ``pf_fixed``,
``pf_guest``, ``mmu_pte_write``, ``mmu_shadow_zapped``, ``mmu_flooded``,
``mmu_unsync``, ``mmu_cache_miss``, ``tlb_flush``, ``invlpg``: see
Documentation/virt/kvm/x86/mmu.rst and x86.c's stats descriptors, notes §4.8),
so a KVM user reads them without a glossary.

Counting rules, so every figure means one thing:
* each access is counted once in the TLB counters, with the outcome of the
  attempt that completed it (``tlb_misses = accesses - l1_hits - l2_hits``);
* ``walks``/``walk_refs`` count walks that complete a translation; references
  of walks that end in a fault go to ``faulted_walk_refs`` (they still cost);
* a write hitting a clean or read-only TLB entry re-walks to set D
  (``assist_walks``/``assist_walk_refs``), as x86 processors do.
"""

from __future__ import annotations

NAMES = (
    # accesses and TLB
    "accesses", "reads", "writes", "fetches",
    "tlb_l1_hits", "tlb_l2_hits", "tlb_misses",
    # walks
    "walks", "walk_refs", "guest_refs", "nested_refs",
    "faulted_walks", "faulted_walk_refs", "assist_walks", "assist_walk_refs",
    "pwc_hits", "nwc_hits", "ntlb_hits", "ntlb_misses",
    "refs_l1d", "refs_l2", "refs_l3", "refs_dram", "refs_mem",
    # cycles, by where they went
    "cyc_base", "cyc_tlb", "cyc_walk", "cyc_exit", "cyc_hypervisor", "cyc_guest_os",
    # exits (KVM names) and their reasons
    "exits", "exit_npf", "exit_cr3_write", "exit_invlpg", "exit_pt_write",
    "exit_shadow_fault", "exit_guest_pf_inject", "exit_dirty_track",
    "pf_fixed", "pf_guest", "mmu_pte_write", "mmu_shadow_zapped", "mmu_flooded",
    "mmu_unsync", "mmu_cache_miss", "mmu_recycled", "tlb_flush", "invlpg",
    "hv_walk_refs",
    # guest OS activity (the same in every mode)
    "guest_pf", "cow_faults", "pte_writes", "ctx_switches", "forks", "execs",
    "proc_exits", "mmaps", "munmaps", "guest_tlb_flushes", "guest_invlpgs",
    # where the program's own data accesses were served (cache.data_accesses)
    "data_l1d", "data_l2", "data_l3", "data_dram",
)
INDEX = {name: i for i, name in enumerate(NAMES)}
N_COUNTERS = len(NAMES)

EXIT_REASONS = ("npf", "cr3_write", "invlpg", "pt_write", "shadow_fault", "guest_pf_inject", "dirty_track")
KVM_NAMES = (
    "exits", "pf_fixed", "pf_guest", "mmu_pte_write", "mmu_shadow_zapped", "mmu_flooded",
    "mmu_unsync", "mmu_cache_miss", "mmu_recycled", "tlb_flush", "invlpg",
)
CYCLE_PARTS = ("cyc_base", "cyc_tlb", "cyc_walk", "cyc_exit", "cyc_hypervisor", "cyc_guest_os")

# slots the compiled kernel writes (checked against NAMES by the tests)
K_ACCESSES = 0
K_READS = 1
K_WRITES = 2
K_FETCHES = 3
K_L1_HITS = 4
K_L2_HITS = 5
K_MISSES = 6
K_WALKS = 7
K_WALK_REFS = 8
K_GUEST_REFS = 9
K_NESTED_REFS = 10
K_FAULTED_WALKS = 11
K_FAULTED_REFS = 12
K_ASSIST_WALKS = 13
K_ASSIST_REFS = 14
K_PWC_HITS = 15
K_NWC_HITS = 16
K_NTLB_HITS = 17
K_NTLB_MISSES = 18
K_REFS_L1D = 19  # + served code (L1D, L2, L3, DRAM, mem)
K_CYC_BASE = 24
K_CYC_TLB = 25
K_CYC_WALK = 26
K_DATA_L1D = NAMES.index("data_l1d")  # + served level

KERNEL_SLOTS = {
    "accesses": K_ACCESSES, "reads": K_READS, "writes": K_WRITES, "fetches": K_FETCHES,
    "tlb_l1_hits": K_L1_HITS, "tlb_l2_hits": K_L2_HITS, "tlb_misses": K_MISSES,
    "walks": K_WALKS, "walk_refs": K_WALK_REFS, "guest_refs": K_GUEST_REFS,
    "nested_refs": K_NESTED_REFS, "faulted_walks": K_FAULTED_WALKS,
    "faulted_walk_refs": K_FAULTED_REFS, "assist_walks": K_ASSIST_WALKS,
    "assist_walk_refs": K_ASSIST_REFS, "pwc_hits": K_PWC_HITS, "nwc_hits": K_NWC_HITS,
    "ntlb_hits": K_NTLB_HITS, "ntlb_misses": K_NTLB_MISSES, "refs_l1d": K_REFS_L1D,
    "cyc_base": K_CYC_BASE, "cyc_tlb": K_CYC_TLB, "cyc_walk": K_CYC_WALK, "data_l1d": K_DATA_L1D,
}


def as_dict(values) -> dict[str, int]:
    return {name: int(values[i]) for i, name in enumerate(NAMES)}
