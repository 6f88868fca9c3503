"""KVM's shadow MMU, rule by rule, with exact counts on small op streams.

Each test names the KVM function whose behaviour it pins down: FNAME(invlpg) / FNAME(sync_spte),
FNAME(pte_prefetch), and the KVM statistics counted where KVM counts them (kvm_mmu_page_fault,
kvm_mmu_pte_write, kvm_unsync_page / kvm_unlink_unsync_page, kvm_flush_remote_tlbs). The guest's
rules are in test_linux_guest_rules.py, host backing in test_host_backing.py.
"""

from __future__ import annotations

import numpy as np

from machine_helpers import BASE, delta, machine
from rvi_tui.engine import entry as E
from rvi_tui.engine.counters import KVM_NAMES
from rvi_tui.engine.machine import Machine
from rvi_tui.engine.report import summarize
from rvi_tui.workloads import ops as O
from shadow_checker import check_shadow

PAGE = 4096


def leaf_page(m: Machine, va: int):
    """The shadow page holding va's 4 KiB leaf entry, and the entry's index in it."""
    table = m.os.current.table.walk(va)[-1].table
    (sp,) = m.mode.by_gfn[table]
    return sp, E.index_at(va, 1)


def spte(m: Machine, va: int) -> int:
    sp, index = leaf_page(m, va)
    return m.host.mem.read(sp.frame, index)


def written_pages(n: int, **overrides) -> Machine:
    """A shadow machine whose process wrote n consecutive 4 KiB pages (present, accessed, dirty)."""
    m = machine(**overrides)
    m.run(O.concat([O.mmap(1, BASE, 1 << 21, huge=False), O.accesses(BASE + PAGE * np.arange(n),
                                                                       rw=O.WRITE)]))
    return m


# --- INVLPG: FNAME(invlpg) / FNAME(sync_spte) ------------------------------------------------------------
def test_invlpg_leaves_an_in_sync_page_alone():
    """An in-sync page already follows the guest: KVM's walk stops at its leaf (`if (!sp->unsync) break`)."""
    m = written_pages(2, **{"shadow.unsync": False})
    sp, index = leaf_page(m, BASE)
    assert not sp.unsync
    before = m.host.mem.table(sp.frame).copy()
    d_before = m.counters()
    m.mode.invlpg(m.os.current, BASE)  # the guest's INVLPG of a page whose entry it did not change
    d = {k: v - d_before[k] for k, v in m.counters().items()}
    assert (m.host.mem.table(sp.frame) == before).all()  # no shadow entry changed
    assert d["exit_invlpg"] == 1 and d["invlpg"] == 1 and d["tlb_flush"] == 0 and d["mmu_shadow_zapped"] == 0
    check_shadow(m)


def test_invlpg_on_an_unsync_page_refreshes_that_entry_and_leaves_the_page_unsync():
    m = written_pages(3)  # the 2nd and 3rd demand maps wrote the shadowed leaf table: it went unsync once
    sp, _ = leaf_page(m, BASE)
    assert sp.unsync and m.counters()["mmu_unsync"] == 1
    other = spte(m, BASE + PAGE)
    # the guest unmaps page 0: a plain store into the unsync table, then its INVLPG
    d = delta(m, O.op(O.MUNMAP, pid=1, addr=BASE, arg=PAGE))
    assert d["exit_pt_write"] == 0 and d["exit_invlpg"] == 1 and d["invlpg"] == 1
    assert m.host.mem.read(sp.frame, 0) == 0  # that entry was dropped (FNAME(sync_spte): gpte gone)
    assert d["tlb_flush"] == 1  # KVM flushes after dropping a present SPTE
    assert m.host.mem.read(sp.frame, 1) == other  # its neighbour is untouched
    assert sp.unsync and m.counters()["mmu_unsync"] == 1  # and the page stays unsync
    check_shadow(m)


def test_invlpg_narrows_a_refreshed_entry_to_the_guests_rights():
    m = written_pages(2)
    sp, _ = leaf_page(m, BASE)
    assert sp.unsync and spte(m, BASE) & E.RW
    table = m.os.current.table
    leaf = table.walk(BASE)[-1]
    table.write_entry(leaf.table, leaf.index, leaf.value & ~E.RW)  # the guest write-protects page 0
    m.mode.invlpg(m.os.current, BASE)
    s = spte(m, BASE)
    assert s & E.P and not s & E.RW and E.frame_of(s) == m.host.placement(E.frame_of(leaf.value))
    assert sp.unsync and 0 not in sp.stale
    check_shadow(m)


# --- FNAME(pte_prefetch) ---------------------------------------------------------------------------------
def _zap_leaf_then_touch(m: Machine, first: int, then):
    sp, _ = leaf_page(m, BASE)
    m.mode._zap(sp, "zap")  # as KVM does under memory pressure: the guest's entries stay
    d = delta(m, O.accesses([BASE + first * PAGE], rw=O.READ))
    d2 = delta(m, O.accesses([BASE + i * PAGE for i in then], rw=O.READ))
    return d, d2


def test_a_hidden_fault_prefetches_its_present_accessed_neighbours():
    m = written_pages(8)
    d, d2 = _zap_leaf_then_touch(m, 3, range(8))
    assert d["exit_shadow_fault"] == 1 and d["pf_fixed"] == 1
    sp, _ = leaf_page(m, BASE)
    assert all(m.host.mem.read(sp.frame, i) & E.P for i in range(8))  # 1 filled + 7 prefetched
    assert d2["exits"] == 0  # the other seven pages need no fault
    check_shadow(m)


def test_prefetch_stays_in_its_aligned_group_of_eight_and_stops_at_an_entry_not_present():
    m = written_pages(16)
    m.run(O.op(O.MUNMAP, pid=1, addr=BASE + 5 * PAGE, arg=PAGE))  # entry 5 not present any more
    sp, _ = leaf_page(m, BASE)
    d, _ = _zap_leaf_then_touch(m, 0, [])
    sp, _ = leaf_page(m, BASE)
    present = [i for i in range(16) if m.host.mem.read(sp.frame, i) & E.P]
    assert present == [0, 1, 2, 3, 4]  # stopped at 5 (FNAME(prefetch_invalid_gpte)); never past index 7
    check_shadow(m)


def test_without_prefetch_each_page_faults():
    m = written_pages(8, **{"shadow.prefetch": 1})
    _, d2 = _zap_leaf_then_touch(m, 3, range(8))
    assert d2["exit_shadow_fault"] == 7


# --- KVM's statistics, counted where KVM counts them -----------------------------------------------------
def test_shadow_fault_outcomes_add_up_as_kvm_mmu_page_fault_counts_them():
    m = machine("shadow", **{"shadow.unsync": True})
    m.run(O.concat([O.mmap(1, BASE, 1 << 22, huge=False), O.accesses(BASE + PAGE * np.arange(6),
                                                                       rw=O.READ),
                    O.accesses([BASE + 4 * PAGE], rw=O.WRITE), O.op(O.FORK, pid=1, arg=2),
                    O.accesses([BASE + (1 << 21)], rw=O.WRITE)]))
    c = m.counters()
    faults = sum(c["exit_" + r] for r in ("shadow_fault", "dirty_track", "pt_write", "guest_pf_inject"))
    assert c["pf_taken"] == faults
    unsyncs = c["exit_pt_write"] - c["mmu_pte_write"]
    assert c["pf_fixed"] == c["exit_shadow_fault"] + c["exit_dirty_track"] + unsyncs
    assert c["pf_emulate"] == c["mmu_pte_write"] and c["pf_guest"] == c["exit_guest_pf_inject"]


def test_an_emulated_write_that_zaps_a_present_spte_counts_kvms_own_tlb_flush():
    m = written_pages(2, **{"shadow.unsync": False})
    d = delta(m, O.op(O.MUNMAP, pid=1, addr=BASE, arg=PAGE))
    assert d["exit_pt_write"] == 1 and d["pf_taken"] == 1 and d["pf_emulate"] == 1 and d["mmu_pte_write"] == 1
    assert d["tlb_flush"] == 1  # kvm_mmu_remote_flush_or_zap -> KVM_REQ_TLB_FLUSH, no guest flush
    assert d["guest_tlb_flushes"] == 0 and d["exit_invlpg"] == 1


def test_new_entries_written_into_a_shadowed_page_directory_count_mmu_pde_zapped():
    m = machine("shadow", **{"shadow.flooding": False})
    m.run(O.concat([O.mmap(1, BASE, 1 << 30, huge=False), O.accesses([BASE])]))
    before = m.counters()
    for i in (1, 2, 3):  # each first touch of a new 2 MiB region writes one new PDE
        m.os.page_fault(BASE + i * (1 << 21), False, False)
    d = {k: v - before[k] for k, v in m.counters().items()}
    assert d["mmu_pde_zapped"] == 3 and d["pf_emulate"] == 3


def test_exec_counts_its_cr3_flush_and_kvms_flush_after_zapping_the_old_tables():
    m = machine("shadow")
    m.run(O.concat([O.mmap(1, BASE, 1 << 20, huge=False), O.accesses([BASE], rw=O.WRITE)]))
    d = delta(m, O.op(O.EXEC, pid=1))
    assert d["exit_cr3_write"] == 1
    assert d["tlb_flush"] == 2  # kvm_vcpu_flush_tlb_current for the load + KVM_REQ_TLB_FLUSH after the zaps


def test_without_pcid_every_cr3_load_is_a_tlb_flush():
    m = machine("shadow", **{"guest.pcid": False})
    m.run(O.concat([O.mmap(1, BASE, 1 << 20, huge=False), O.op(O.FORK, pid=1, arg=2)]))
    d = delta(m, O.concat([O.op(O.SWITCH, pid=2), O.op(O.SWITCH, pid=1)]))
    assert d["exit_cr3_write"] == 2 and d["tlb_flush"] == 2  # kvm_vcpu_flush_tlb_current each time
    m = machine("shadow")  # with PCID the switch keeps the TLB (CR3's no-flush bit)
    m.run(O.concat([O.mmap(1, BASE, 1 << 20, huge=False), O.op(O.FORK, pid=1, arg=2)]))
    d = delta(m, O.concat([O.op(O.SWITCH, pid=2), O.op(O.SWITCH, pid=1)]))
    assert d["exit_cr3_write"] == 2 and d["tlb_flush"] == 0


def test_mmu_unsync_is_a_gauge_that_survives_a_counter_reset():
    m = written_pages(3)
    assert m.counters()["mmu_unsync"] == 1
    m.cnt[:] = 0  # Session.reset_counters at the end of a warm-up
    m.run(O.accesses([BASE + 8 * PAGE], rw=O.WRITE))  # the hypervisor runs again
    assert m.counters()["mmu_unsync"] == 1
    m.run(O.op(O.FORK, pid=1, arg=2))  # the parent's TLB flush syncs the page
    assert m.counters()["mmu_unsync"] == 0


def test_report_and_counters_pane_show_every_kvm_counter_with_its_meaning():
    from rvi_tui.engine.counters import KVM_MEANINGS
    from rvi_tui.tui.widgets.counters import KVM_ROWS

    assert set(KVM_MEANINGS) == set(KVM_NAMES)
    assert set(KVM_ROWS) == set(KVM_NAMES) - {"exits"}
    m = machine("shadow")
    m.run(O.concat([O.mmap(1, BASE, 1 << 20, huge=False), O.accesses([BASE], rw=O.WRITE)]))
    kvm = summarize({"shadow": m.counters()})["shadow"]["kvm"]
    assert all(kvm[k] == m.counters()[k] for k in KVM_NAMES)


def test_a_reset_of_the_counts_keeps_the_unsync_gauge():
    """The end of a warm-up forgets counts, not state: shadow pages still unsync are still counted."""
    from rvi_tui.engine import config as C
    from rvi_tui.engine.session import Session

    ops = O.concat([O.mmap(1, BASE, 1 << 21, huge=False), O.accesses([BASE + i * PAGE for i in range(4)]),
                    O.op(O.MUNMAP, pid=1, addr=BASE + PAGE, arg=PAGE)])  # a write to a shadowed leaf table
    session = Session([ops], C.load(overrides={"guest.mem_gib": 1}), modes=("shadow",))
    session.run(len(ops))
    live = session.machines["shadow"].mode.n_unsync
    assert live > 0 and session.counters()["shadow"]["mmu_unsync"] == live
    session.reset_counters()
    after = session.counters()["shadow"]
    assert after["mmu_unsync"] == live and after["accesses"] == 0
