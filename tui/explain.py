"""What every number on screen means: what counts it, its formula, and the costs behind it with their sources.

The help screen's last sections are made here from the running config, so a
cost is shown with the value the run uses and the preset's citation and tag
(or the option that set it). Pure text; no Textual.
"""

from __future__ import annotations

from rvi_tui.engine.counters import KVM_MEANINGS
from rvi_tui.engine.sources import TAGS, tag_of

# (row of the counters pane, what counts it / its formula), in the pane's order
ROWS = (
    ("accesses", "memory accesses of the workload (reads, writes, fetches), each counted once"),
    ("cycles/access", "(base + TLB + walk + guest OS + VM exits + hypervisor cycles) / accesses: the six rows "
                      "below it, each per access, add up to it"),
    (" base", "the data access itself: the latency of the cache level that served it (`cost.ref_l1d`, `ref_l2`, "
              "`ref_l3`, `ref_dram`) with `cache.data_accesses` on, else `cost.access` per access"),
    (" TLB", "`cost.tlb_l1` per access (every access probes the L1 TLB) + `cost.tlb_l2` per L1 miss"),
    (" walk", "every walk reference at the latency of the level that served it (`cost.ref_*`; `cost.ref_flat` with "
              "`cache.enabled` off) + `cost.pwc_hit` per PWC or NWC hit + `cost.ntlb_hit` per NTLB hit; walks "
              "that fault and D-bit re-walks included"),
    (" guest OS", "`cost.guest_pf` per guest page fault (its first 4 KiB clear included) + clearing the rest of a "
                  "new large page (`cost.clear_4k` per 4 KiB) or copying a page on copy-on-write (`cost.copy_4k` "
                  "per 4 KiB) + `cost.guest_pte_write` per page-table write + `cost.guest_os_op` per fork, exec, "
                  "exit, mmap, munmap and context switch: the same in every mode"),
    (" VM exits", "`cost.vm_exit` per VM exit: the round trip into the hypervisor and back"),
    (" hypervisor", "each exit's handler (`cost.npf_handler`, `shadow_fill_handler`, `pt_write_handler`, "
                    "`cr3_handler`, `invlpg_handler`, `inject_handler`, `dirty_handler`) + `cost.host_page_alloc` "
                    "per host page newly backing guest memory, and `cost.clear_4k` per 4 KiB of it beyond the first"),
    ("vs native", "cycles / native cycles − 1: + is slower than native, − faster; — until native has cycles"),
    ("TLB miss rate", "TLB misses / accesses; a miss is an access that hit neither the L1 nor the L2 TLB"),
    ("walks", "page walks that completed a translation (a walk that ends in a fault is counted apart)"),
    ("refs/walk", "memory references of those walks / walks"),
    ("VM exits", "every VM exit; the rows under it split them by reason"),
    ("guest #PF", "page faults the guest OS handled: the same in every mode"),
)
SAVED = ("**saved** (walk grid and event log): the references a walk did not make because a walk cache held the "
         "answer: a PWC hit spares its level's entry read and, in a 2-D walk, the nested walk of that level's "
         "table; an NWC hit one nested reference; an NTLB hit a whole nested walk. A walk's references plus the "
         "ones saved are the references of the same walk made cold (24 for 4-level guest and host tables).")
COST_KEYS = ("cost.access", "cost.tlb_l1", "cost.tlb_l2", "cost.pwc_hit", "cost.ntlb_hit", "cost.ref_l1d",
             "cost.ref_l2", "cost.ref_l3", "cost.ref_dram", "cost.ref_flat", "cost.guest_pf", "cost.clear_4k",
             "cost.copy_4k", "cost.guest_pte_write",
             "cost.guest_os_op", "cost.vm_exit", "cost.npf_handler", "cost.shadow_fill_handler",
             "cost.pt_write_handler", "cost.cr3_handler", "cost.invlpg_handler", "cost.inject_handler",
             "cost.dirty_handler", "cost.host_page_alloc")


def counter_help(config=None, sources: dict | None = None) -> str:
    """Markdown: every counter's meaning, then (with a config) every cost with its value and source."""
    lines = ["## Every number: what counts it, and its formula", ""]
    lines += [f"* **{row.strip()}**: {text}" for row, text in ROWS]
    lines += [f"* **{name.removeprefix('mmu_')}** (KVM's `{name}`): {text}" for name, text in KVM_MEANINGS.items()
              if name != "exits"]
    lines += ["", SAVED, ""]
    if config is not None:
        sources = sources or {}
        lines += [f"## The costs of this run (preset `{config.preset}`)", "",
                  "Tags: [V] verified at the source, [S] secondary, [U] unverified, [D] derived or modelled.", ""]
        for key in COST_KEYS:
            if key in config:
                source = sources.get(key, "")
                tag = TAGS.get(tag_of(source), "set by an option" if source.startswith("set by") else "no tag")
                unit = "cycle" if config[key] == 1 else "cycles"
                lines.append(f"* `{key}` = **{config[key]:,}** {unit} ({tag}): {source or '(no source in the preset)'}")
        lines.append("")
    return "\n".join(lines)
