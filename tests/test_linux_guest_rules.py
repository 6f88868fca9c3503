"""Linux's memory manager as the guest, rule by rule, with exact counts on small op streams, in every mode.

wp_page_reuse (no flush) and wp_page_copy (a flush), exec's one CR3 write, and do_anonymous_page's
shared zero page: the guest's own work is the same whatever the paging mode.
"""

from __future__ import annotations

import pytest

from machine_helpers import BASE, delta, machine
from rvi_tui.engine import entry as E
from rvi_tui.workloads import ops as O

PAGE = 4096
MODES = ("native", "shadow", "nested")


# --- copy-on-write: wp_page_reuse / wp_page_copy ---------------------------------------------------------
def _cow_reuse_stream():
    """pid 1 writes a page, forks, the child exits: the page is COW in the parent but no longer shared."""
    return O.concat([O.mmap(1, BASE, 1 << 20, huge=False), O.accesses([BASE], rw=O.WRITE),
                     O.op(O.FORK, pid=1, arg=2), O.op(O.EXIT, pid=2)])


@pytest.mark.parametrize("mode", MODES)
def test_cow_of_an_unshared_page_reuses_it_without_invlpg(mode):
    m = machine(mode)
    m.run(_cow_reuse_stream())
    frame = m.os.current.table.lookup(BASE)[0]
    d = delta(m, O.accesses([BASE + 8], rw=O.WRITE))
    assert d["cow_faults"] == 1 and d["guest_invlpgs"] == 0 and d["exit_invlpg"] == 0
    assert m.os.current.table.lookup(BASE)[0] == frame  # reused in place


@pytest.mark.parametrize("mode", MODES)
def test_cow_of_a_shared_page_copies_it_and_invalidates(mode):
    m = machine(mode)
    m.run(O.concat([O.mmap(1, BASE, 1 << 20, huge=False), O.accesses([BASE], rw=O.WRITE),
                    O.op(O.FORK, pid=1, arg=2)]))
    d = delta(m, O.accesses([BASE + 8], rw=O.WRITE))
    assert d["cow_faults"] == 1 and d["guest_invlpgs"] == 1
    assert d["exit_invlpg"] == (1 if mode == "shadow" else 0)


# --- exec: one CR3 write ---------------------------------------------------------------------------------
def test_exec_writes_cr3_once():
    m = machine("shadow")
    m.run(O.concat([O.mmap(1, BASE, 1 << 20, huge=False), O.accesses([BASE], rw=O.WRITE)]))
    d = delta(m, O.op(O.EXEC, pid=1))
    assert d["exit_cr3_write"] == 1 and d["execs"] == 1
    for mode in MODES:  # and the old address space's translations are gone in every mode
        m = machine(mode)
        m.run(O.concat([O.mmap(1, BASE, 1 << 20, huge=False), O.accesses([BASE], rw=O.WRITE),
                        O.op(O.EXEC, pid=1), O.mmap(1, BASE, 1 << 20, huge=False)]))
        d = delta(m, O.accesses([BASE], rw=O.READ))
        assert d["guest_pf"] == 1, mode


# --- do_anonymous_page: the zero page --------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_read_then_write_of_an_anonymous_page_maps_the_zero_page_then_copies(mode):
    m = machine(mode)
    m.run(O.mmap(1, BASE, 1 << 20, huge=False))
    used = m.gmem.frames_in_use
    d = delta(m, O.accesses([BASE, BASE + PAGE], rw=O.READ))  # two pages read: both map the zero page
    zero = m.os.zero_frame
    assert d["guest_pf"] == 2 and d["zero_page_maps"] == 2 and d["cow_faults"] == 0
    assert m.os.current.table.lookup(BASE)[0] == m.os.current.table.lookup(BASE + PAGE)[0] == zero
    assert m.gmem.frames_in_use == used + 3 + 1  # three new tables below the root, the zero page; no data page
    d = delta(m, O.accesses([BASE + 8], rw=O.WRITE))
    assert d["guest_pf"] == 1 and d["cow_faults"] == 1 and d["guest_invlpgs"] == 1  # wp_page_copy
    assert m.os.current.table.lookup(BASE)[0] != zero
    assert d["exit_dirty_track"] == 0  # the copy is mapped dirty: no dirty-tracking exit
    if mode == "shadow":
        assert d["exit_guest_pf_inject"] == 1 and d["exit_shadow_fault"] == 1
    m.run(O.op(O.MUNMAP, pid=1, addr=BASE, arg=1 << 20))
    assert m.os.zero_frame == zero and not m.gmem.is_free(zero)  # the kernel's page: never freed
    assert m.gmem.frames_in_use == used + 1  # the zero page alone is left (the emptied tables were freed)


def test_a_read_only_mapping_reads_the_zero_page_without_cow():
    m = machine("native")
    m.run(O.concat([O.mmap(1, BASE, 1 << 20, writable=False, huge=False), O.accesses([BASE], rw=O.READ)]))
    leaf = m.os.current.table.walk(BASE)[-1].value
    assert E.frame_of(leaf) == m.os.zero_frame and not leaf & E.RW and not leaf & (1 << 9)
