"""Shadow paging's behaviour, event by event, and the VMware study's contrasts on the OS workloads."""

from __future__ import annotations

import numpy as np
import pytest

from machine_helpers import BASE, cfg_from
from rvi_tui.engine.events import Exit, ShadowSync, Translated
from rvi_tui.engine.machine import Machine
from rvi_tui.engine.report import summarize
from rvi_tui.engine.session import Session
from rvi_tui.workloads import ops as O
from rvi_tui.workloads.registry import make_workload
from shadow_checker import check_shadow


def shadow(**overrides):
    return Machine("shadow", cfg_from({"guest.mem_gib": 1, **overrides}))


def exits(events):
    return [e.reason for e in events if isinstance(e, Exit)]


def test_demand_fault_is_an_injected_fault_then_a_hidden_fault():
    m = shadow()
    m.run(O.mmap(1, BASE, 1 << 20, huge=False))
    events = m.step(O.accesses([BASE], rw=O.READ))
    reasons = exits(events)
    assert reasons[0] == "guest_pf_inject"  # the guest entry is absent: the #PF is the guest's
    assert reasons[-1] == "shadow_fault"  # then the hidden fault fills the shadow path
    c = m.counters()
    assert c["pf_guest"] == 1 and c["pf_fixed"] == 1 and c["guest_pf"] == 1
    check_shadow(m)


def test_first_write_to_a_clean_page_exits_once_for_dirty_tracking():
    # a 4 KiB read fault maps the zero page now (do_anonymous_page); a 2 MiB one maps a clean writable page
    m = shadow(**{"guest.page": "2m"})
    m.run(O.mmap(1, BASE, 1 << 21, huge=True))
    m.run(O.accesses([BASE], rw=O.READ))  # mapped clean
    assert exits(m.step(O.accesses([BASE + 8], rw=O.WRITE))) == ["dirty_track"]
    assert exits(m.step(O.accesses([BASE + 16], rw=O.WRITE))) == []
    assert m.os.current.table.walk(BASE)[-1].value & 0x40  # the guest's D bit was set by the hypervisor
    check_shadow(m)


def test_cr3_load_and_invlpg_exit_in_shadow_and_not_in_nested():
    stream = O.concat([O.mmap(1, BASE, 1 << 20), O.accesses([BASE], rw=O.WRITE), O.op(O.FORK, pid=1, arg=2),
                       O.op(O.SWITCH, pid=2), O.accesses([BASE], rw=O.WRITE), O.op(O.SWITCH, pid=1),
                       O.op(O.MUNMAP, pid=1, addr=BASE, arg=4096)])
    counts = {}
    for mode in ("shadow", "nested"):
        m = Machine(mode, cfg_from({"guest.mem_gib": 1}))
        m.run(stream)
        counts[mode] = m.counters()
    assert counts["shadow"]["exit_cr3_write"] >= 2 and counts["shadow"]["exit_invlpg"] >= 1
    assert counts["shadow"]["invlpg"] >= 1
    for reason in ("cr3_write", "invlpg", "pt_write", "shadow_fault", "guest_pf_inject", "dirty_track"):
        assert counts["nested"]["exit_" + reason] == 0
    assert counts["nested"]["exit_npf"] > 0


def _table_writes(unsync: bool, flooding: bool, n: int):
    """Map n pages under one leaf table (each map writes one guest PTE), after the table is shadowed."""
    m = shadow(**{"shadow.unsync": unsync, "shadow.flooding": flooding})
    m.run(O.mmap(1, BASE, 1 << 21, huge=False))
    m.run(O.accesses([BASE]))  # the leaf table now has a shadow page: it is write-protected
    before = m.counters()
    events = []
    for i in range(1, n + 1):
        events += m.step(O.accesses([BASE + i * 4096]))
    after = m.counters()
    return m, {k: after[k] - before[k] for k in after}, events


def test_writes_to_a_shadowed_table_are_emulated_without_unsync():
    m, d, _ = _table_writes(unsync=False, flooding=False, n=5)
    assert d["exit_pt_write"] == 5 and d["mmu_pte_write"] == 5 and d["mmu_unsync"] == 0
    check_shadow(m)


def test_unsync_leaf_table_exits_once_then_resyncs_at_the_next_flush():
    m, d, events = _table_writes(unsync=True, flooding=False, n=5)
    assert d["exit_pt_write"] == 1 and d["mmu_unsync"] == 1 and d["mmu_pte_write"] == 0
    assert any(isinstance(e, ShadowSync) and e.action == "unsync" for e in events)
    events = m.step(O.op(O.MUNMAP, pid=1, addr=BASE + 4096, arg=2 * 4096))  # the guest INVLPGs each page
    assert exits(events) == ["invlpg", "invlpg"]
    # FNAME(invlpg) / FNAME(sync_spte): each INVLPG brings its own entry up to date; the page stays unsync
    assert not any(isinstance(e, ShadowSync) and e.action == "resync" for e in events)
    sp = m.mode.by_gfn[m.os.current.table.walk(BASE)[-1].table][0]
    assert sp.unsync and m.counters()["mmu_unsync"] == 1
    check_shadow(m)
    events = m.step(O.op(O.FORK, pid=1, arg=2))  # fork flushes the parent's TLB: kvm_mmu_sync_roots
    assert any(isinstance(e, ShadowSync) and e.action == "resync" for e in events)
    assert not sp.unsync and m.counters()["mmu_unsync"] == 0  # a gauge: it falls when the page is synced
    check_shadow(m)


def test_write_flooding_zaps_an_upper_level_shadow_page():
    """Writes to a non-leaf guest table: the third without the page being used in between zaps it."""
    m = shadow(**{"shadow.unsync": True, "shadow.flooding": True})
    m.run(O.mmap(1, BASE, 1 << 30, huge=False))
    m.run(O.accesses([BASE]))
    before = m.counters()
    # three new 2 MiB regions: each first touch writes one new PDE into the shadowed page directory
    for i in (1, 2, 3):
        m.os.page_fault(BASE + i * (1 << 21), False, False)
    d = {k: v - before[k] for k, v in m.counters().items()}
    assert d["mmu_flooded"] == 1 and d["mmu_shadow_zapped"] >= 1
    check_shadow(m)


def _run(name, params, **overrides):
    config = cfg_from(overrides)
    workload = make_workload(name, seed=1, **params)
    session = Session(workload.chunks(), config)
    warm = workload.warmup_ops
    if warm:
        session.run(warm)
        session.reset_counters()
    session.run_to_end()
    return summarize(session.counters())


@pytest.fixture(scope="module")
def kcompile():
    return _run("kcompile", {"jobs": 25})


def test_kcompile_nested_beats_shadow_which_traps_table_writes_and_cr3_loads(kcompile):
    sh, ne = kcompile["shadow"], kcompile["nested"]
    assert sh["exits"]["by_reason"]["pt_write"] > 0 and sh["exits"]["by_reason"]["cr3_write"] > 0
    assert ne["exits"]["by_reason"]["pt_write"] == 0 and ne["exits"]["by_reason"]["cr3_write"] == 0
    assert ne["cycles"] < sh["cycles"]
    assert ne["exits"]["total"] < sh["exits"]["total"]


def test_kcompile_without_unsync_is_dominated_by_table_write_exits():
    sh = _run("kcompile", {"jobs": 10}, **{"shadow.unsync": False})["shadow"]["exits"]["by_reason"]
    assert sh["pt_write"] == max(sh.values())


def test_tlbstress_small_pages_favour_shadow_large_pages_recover_nested():
    params = {"footprint": 32 << 20, "accesses": 300_000}
    small = _run("tlbstress", params)
    assert small["nested"]["cycles"] > small["shadow"]["cycles"]
    assert small["nested"]["walk_refs_per_walk"] > 2 * small["shadow"]["walk_refs_per_walk"]
    large = _run("tlbstress", params, **{"guest.page": "2m", "host.page": "2m"})
    assert large["nested"]["overhead_vs_native"] < small["nested"]["overhead_vs_native"] / 2


def test_the_study_tlbstress_cell_misses_the_tlb_with_large_pages_too():
    """The study's TLB-intensive row must exercise the TLB with 2 MiB pages as well: its heap spans more
    large pages (8,192) than the L2 TLB holds (3,072), so most accesses miss and walk in every mode."""
    from rvi_tui.engine.study import WORKLOADS

    params = {**dict((w[0], w[1]) for w in WORKLOADS)["tlbstress"], "accesses": 40_000}
    large = _run("tlbstress", params, **{"guest.page": "2m", "host.page": "2m"})
    for mode in ("native", "shadow", "nested"):
        assert large[mode]["tlb"]["miss_rate"] > 0.5, mode
    assert large["nested"]["walk_refs_per_walk"] > large["native"]["walk_refs_per_walk"]
    small = _run("tlbstress", params)
    assert 0 < large["nested"]["overhead_vs_native"] < small["nested"]["overhead_vs_native"]


def test_shadow_page_cache_is_capped_and_recycles_the_oldest():
    m = shadow(**{"shadow.max_pages": 64})  # KVM_MIN_ALLOC_MMU_PAGES, the least cap the config allows
    m.run(O.mmap(1, BASE, 1 << 30, huge=False))
    m.run(O.accesses(BASE + np.arange(80) * (1 << 21)))  # eighty leaf tables: more shadow pages than the cap
    c = m.counters()
    assert len(m.mode.pages) <= 64 and c["mmu_recycled"] > 0
    check_shadow(m)
    # every access still translates to the same host address as nested paging
    n = Machine("nested", cfg_from({"guest.mem_gib": 1}))
    n.run(O.mmap(1, BASE, 1 << 30, huge=False))
    for i in range(8):
        va = BASE + i * (1 << 21) + 24
        hs = [e.paddr for e in m.step(O.accesses([va])) if isinstance(e, Translated)][-1]
        hn = [e.paddr for e in n.step(O.accesses([va])) if isinstance(e, Translated)][-1]
        assert hs == hn
