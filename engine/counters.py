"""Counter names and their slots in a machine's int64 counter array.

Names follow KVM's own statistics where KVM has one (``exits``, ``pf_taken``,
``pf_fixed``, ``pf_emulate``, ``pf_guest``, ``mmu_pte_write``, ``mmu_pde_zapped``,
``mmu_shadow_zapped``, ``mmu_flooded``, ``mmu_unsync``, ``mmu_cache_miss``,
``mmu_recycled``, ``tlb_flush``, ``invlpg``: see Documentation/virt/kvm/x86/mmu.rst
and x86.c's stats descriptors, notes §4.8), and each is incremented where KVM
increments it (``KVM_MEANINGS`` below says where), so a KVM user reads them
without a glossary.

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
    # appended after the kernel's slots so that none of them moves
    "pf_taken", "pf_emulate", "mmu_pde_zapped", "host_page_allocs", "zero_page_maps",
)
INDEX = {name: i for i, name in enumerate(NAMES)}
N_COUNTERS = len(NAMES)

EXIT_REASONS = ("npf", "cr3_write", "invlpg", "pt_write", "shadow_fault", "guest_pf_inject", "dirty_track")
KVM_NAMES = (
    "exits", "pf_taken", "pf_fixed", "pf_emulate", "pf_guest", "mmu_pte_write", "mmu_pde_zapped",
    "mmu_shadow_zapped", "mmu_flooded", "mmu_unsync", "mmu_cache_miss", "mmu_recycled", "tlb_flush", "invlpg",
)
# What increments each KVM-named counter, in KVM (arch/x86/kvm: x86.c, mmu/mmu.c, mmu/mmu_internal.h,
# mmu/paging_tmpl.h) and so in the model. ``mmu_unsync`` is a gauge, not a count.
KVM_MEANINGS = {
    "exits": "every VM exit, whatever its reason (exit_* split them)",
    "pf_taken": "every page fault the MMU's fault handler takes (kvm_mmu_page_fault): shadow paging's "
                "intercepted #PFs (hidden, dirty-tracking, table-write and injected ones) and nested page faults",
    "pf_fixed": "faults that installed an SPTE (RET_PF_FIXED): hidden faults, dirty tracking, a write that "
                "unsyncs a leaf table, nested page faults",
    "pf_emulate": "faults KVM emulates (RET_PF_EMULATE): a guest write to a write-protected guest table",
    "pf_guest": "#PFs injected into the guest (kvm_inject_page_fault)",
    "mmu_pte_write": "emulated guest page-table writes (kvm_mmu_pte_write)",
    "mmu_pde_zapped": "emulated writes of a present entry into a non-leaf shadowed table (kvm_mmu_pte_write: "
                      "gentry && level > 4K)",
    "mmu_shadow_zapped": "shadow pages zapped (kvm_mmu_prepare_zap_page), for any reason",
    "mmu_flooded": "shadow pages zapped for write flooding (detect_write_flooding)",
    "mmu_unsync": "gauge: shadow pages unsync now (kvm_unsync_page adds one, kvm_unlink_unsync_page on a "
                  "sync or a zap takes it away)",
    "mmu_cache_miss": "shadow-page lookups that made a new page (kvm_mmu_get_shadow_page)",
    "mmu_recycled": "shadow pages zapped to stay under the cap (kvm_mmu_zap_oldest_mmu_pages)",
    "tlb_flush": "TLB flushes KVM performs for the vCPU: the guest's (kvm_vcpu_flush_tlb_guest), a CR3 load "
                 "that flushes (kvm_vcpu_flush_tlb_current) and KVM's own after zapping SPTEs "
                 "(KVM_REQ_TLB_FLUSH -> kvm_vcpu_flush_tlb_all, one per exit however many zaps asked)",
    "invlpg": "guest INVLPGs KVM handles (kvm_mmu_invlpg)",
}
GAUGES = ("mmu_unsync",)  # live values, not counts: a reset of the counts keeps them
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
