"""Cold walks against the closed form n*m + n + m (Bhargava et al., ASPLOS 2008)."""

from __future__ import annotations

import pytest

from rvi_tui.engine import entry as E
from rvi_tui.engine.machine import Machine
from rvi_tui.workloads import ops as O

from machine_helpers import BASE, CACHES_OFF, cfg_from

SIZES = {"4k": 0, "2m": 1, "1g": 2}


def expected_refs(mode: str, levels: int, guest_page: str, host_page: str) -> int:
    """References of a cold walk: a leaf of size s cuts a dimension to `levels - s` steps."""
    n = levels - SIZES[guest_page]
    m = levels - SIZES[host_page]
    if mode == "native":
        return n
    return n * m + n + m


def first_walk(mode: str, levels: int, guest_page: str, host_page: str) -> dict:
    config = cfg_from({**CACHES_OFF, "cache.enabled": False, "guest.levels": levels, "host.levels": levels,
                       "guest.page": guest_page, "host.page": host_page})
    machine = Machine(mode, config)
    machine.run(O.mmap(1, BASE, 1 << 31))  # 2 GiB: room for a 1 GiB page
    machine.run(O.accesses([BASE + 0x123458]))
    return machine.counters()


@pytest.mark.parametrize("levels", [4, 5])
@pytest.mark.parametrize("guest_page", ["4k", "2m", "1g"])
@pytest.mark.parametrize("host_page", ["4k", "2m", "1g"])
@pytest.mark.parametrize("mode", ["native", "nested", "shadow"])
def test_cold_walk_reference_count(mode, levels, guest_page, host_page):
    c = first_walk(mode, levels, guest_page, host_page)
    assert c["walks"] == 1 and c["tlb_misses"] == 1
    if mode == "shadow":  # the hardware walks the shadow table: one dimension, at the smaller page size
        expected = levels - min(SIZES[guest_page], SIZES[host_page])
    else:
        expected = expected_refs(mode, levels, guest_page, host_page)
    assert c["walk_refs"] == expected


def test_headline_numbers():
    """The figures DESIGN.md quotes: 24 for 4x4, 35 for 5x5, 4 natively."""
    assert first_walk("nested", 4, "4k", "4k")["walk_refs"] == 24
    assert first_walk("nested", 5, "4k", "4k")["walk_refs"] == 35
    assert first_walk("native", 4, "4k", "4k")["walk_refs"] == 4
    assert first_walk("nested", 4, "1g", "1g")["walk_refs"] == 8  # notes §2.1: 2 (1 GB) x 2 (1 GB)
    assert first_walk("nested", 4, "4k", "1g")["walk_refs"] == 14


def test_mixed_levels_4_on_5():
    config = cfg_from({**CACHES_OFF, "guest.levels": 4, "host.levels": 5})
    machine = Machine("nested", config)
    machine.run(O.mmap(1, BASE, 1 << 21))
    machine.run(O.accesses([BASE]))
    assert machine.counters()["walk_refs"] == 4 * 5 + 4 + 5  # 29


def test_walk_order_is_the_2d_grid():
    """Reference order of Fig. 1(b): per guest level, the nested walk of its table (nL4..nL1) then the entry."""
    config = cfg_from({**CACHES_OFF})
    machine = Machine("nested", config)
    machine.run(O.mmap(1, BASE, 1 << 21))
    machine.run(O.accesses([BASE]))  # fault everything in
    machine.mmu.flush_all()
    events = machine.step(O.accesses([BASE + 8]))
    from rvi_tui.engine.events import WalkRef

    cells = [(e.row, e.col) for e in events if isinstance(e, WalkRef)]
    expected = []
    for g in (4, 3, 2, 1):
        expected += [(g, n) for n in (4, 3, 2, 1)] + [(g, 0)]
    expected += [(0, n) for n in (4, 3, 2, 1)]
    assert cells == expected


def test_walk_sets_accessed_and_dirty():
    # a 2 MiB read fault maps a clean writable page (a 4 KiB one maps the read-only zero page)
    machine = Machine("native", cfg_from({"guest.page": "2m"}))
    machine.run(O.mmap(1, BASE, 1 << 21, huge=True))
    machine.run(O.accesses([BASE], rw=O.READ))
    leaf = machine.os.current.table.walk(BASE)[-1]
    assert leaf.value & E.A and not leaf.value & E.D
    machine.run(O.accesses([BASE], rw=O.WRITE))
    leaf = machine.os.current.table.walk(BASE)[-1]
    assert leaf.value & E.D
    c = machine.counters()
    assert c["assist_walks"] == 1  # the write hit a clean TLB entry and re-walked to set D
    assert c["tlb_l1_hits"] == 1 and c["tlb_misses"] == 1
    machine.run(O.accesses([BASE + 8, BASE + 16, BASE + 24], rw=O.WRITE))
    assert machine.counters()["assist_walks"] == 1  # the assist refreshed the entry: later writes just hit


def test_a_guest_walk_cache_hit_under_nested_paging_still_translates_the_next_table():
    """The guest-side walk cache holds what the guest entry holds: a guest-physical pointer. AMD's 2D page
    walk cache keeps guest entries as they are, so the next guest table's gPA still needs its nested
    translation (Bhargava et al., ASPLOS 2008, notes §2.3). With the NTLB and nested walk cache off, a walk
    that hits the PDE-level entry reads the nested table for the gL1 table (m), the gL1 entry (1) and the
    nested table for the data page (m): 2m + 1 references."""
    config = cfg_from({"ntlb.enabled": False, "nwc.enabled": False, "cache.enabled": False,
                       "tlb.l1_4k.entries": 1, "tlb.l1_4k.ways": 1, "tlb.l2.entries": 0})
    machine = Machine("nested", config)
    machine.run(O.mmap(1, BASE, 1 << 21, huge=False))
    machine.run(O.accesses([BASE, BASE + 4096], rw=O.WRITE))  # both mapped; the 1-entry TLB holds the second
    before = machine.counters()
    machine.run(O.accesses([BASE + 8]))
    d = {k: machine.counters()[k] - before[k] for k in ("walks", "pwc_hits", "walk_refs", "guest_pf")}
    assert d == {"walks": 1, "pwc_hits": 1, "walk_refs": 2 * 4 + 1, "guest_pf": 0}
