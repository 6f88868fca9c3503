"""The guest's own work never depends on the hypervisor's paging mode (DESIGN.md's functional invariant).

After every op of streams that map, unmap and re-map whole large pages and parts of them, fork,
exit and switch, in every guest/host page-size combination: the guest's own counters (faults,
copy-on-write faults, PTE writes, INVLPGs, flushes, ...) are identical in all three modes, every
access reaches the same host-physical address (the placement is one bijection of guest frames,
so the same hPA is the same gPA), and every TLB hit equals a fresh walk of the guest table.

Two bugs these streams catch and the older ones missed: an INVLPG that left the other 4 KiB
pieces of a 2 MiB guest page in the TLB under nested paging with 4 KiB host pages, and shadow
pages shared by mappings with different rights (a forked child writing through its parent's
writable shadow entries, skipping copy-on-write).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from machine_helpers import BASE, SMALL_TLB, assert_no_entry_twice, cfg_from
from op_streams import Processes
from rvi_tui.engine import entry as E
from rvi_tui.engine.events import Translated
from rvi_tui.engine.machine import Machine
from rvi_tui.workloads import ops as O
from shadow_checker import check_shadow

MODES = ("native", "shadow", "nested")
GUEST_COUNTERS = ("guest_pf", "cow_faults", "zero_page_maps", "pte_writes", "guest_invlpgs", "guest_tlb_flushes",
                  "ctx_switches", "forks", "proc_exits", "mmaps", "munmaps")
PAGE_PAIRS = [("4k", "4k"), ("2m", "4k"), ("4k", "2m"), ("2m", "2m"), ("1g", "4k"), ("1g", "2m"),
              ("4k", "1g"), ("2m", "1g"), ("1g", "1g")]
LARGE = 3  # large pages per process region


@st.composite
def remap_streams(draw, page: int, max_ops: int = 40):
    """Ops over a region of LARGE aligned pages of `page` bytes: whole pages and parts of them
    unmapped and mapped again (MAP_FIXED), accesses spread over every 4 KiB page of the region,
    forks (copy-on-write), exits and switches."""
    region = LARGE * page
    procs = Processes(max_live=3)
    parts = [O.mmap(1, BASE, region, huge=True)]
    small_pages = page // 4096
    # a few 4 KiB pieces of each large page come back often, so that a piece cached before an
    # unmap is touched again after it
    pieces = st.sampled_from([0, 1, 2, small_pages // 2, small_pages - 1]) | st.integers(0, small_pages - 1)

    def somewhere():
        return draw(st.integers(0, LARGE - 1)) * page + draw(pieces) * 4096

    for _ in range(draw(st.integers(1, max_ops))):
        kind = draw(st.sampled_from(["access"] * 10 + ["fork", "switch", "exit", "unmap", "remap", "cut"]))
        current = procs.current
        if kind == "access":
            rw = draw(st.sampled_from([O.READ, O.WRITE]))
            addrs = [BASE + somewhere() for _ in range(draw(st.integers(1, 4)))]
            parts.append(O.accesses(addrs, rw=rw, pid=current))
        elif kind in ("fork", "switch", "exit"):
            parts.extend(procs.op(draw, kind))
        elif kind == "unmap":  # whole large pages
            first = draw(st.integers(0, LARGE - 1))
            parts.append(O.op(O.MUNMAP, pid=current, addr=BASE + first * page,
                              arg=draw(st.integers(1, LARGE - first)) * page))
        elif kind == "remap":  # whole large pages again, or a length that ends inside one
            first = draw(st.integers(0, LARGE - 1))
            length = draw(st.integers(1, LARGE - first)) * page - draw(st.integers(0, small_pages - 1)) * 4096
            parts.append(O.mmap(current, BASE + first * page, length, huge=draw(st.booleans())))
        elif kind == "cut":  # a few 4 KiB pages anywhere: splits a large page
            parts.append(O.op(O.MUNMAP, pid=current, addr=BASE + somewhere(), arg=draw(st.integers(1, 8)) * 4096))
    return O.concat(parts)


def config_for(guest_page: str, host_page: str, unsync: bool, flooding: bool):
    mem = 16 if guest_page == "1g" else 1  # room for 1 GiB pages and their copies
    return cfg_from({**SMALL_TLB, "guest.page": guest_page, "host.page": host_page, "guest.mem_gib": mem,
                     "shadow.unsync": unsync, "shadow.flooding": flooding})


def host_address(machine: Machine, event: Translated) -> int:
    return machine.placement(event.paddr) if machine.name == "native" else event.paddr


def fresh_walk(machine: Machine, va: int) -> int | None:
    """Host-physical address of va by a software walk of the current guest table (None if unmapped)."""
    found = machine.os.current.table.lookup(va)
    if found is None:
        return None
    frame, size, _ = found
    return machine.placement((frame << 12) | (va & (E.page_bytes(size) - 1)))


def check_stream(ops, guest_page: str, host_page: str, unsync: bool = True, flooding: bool = True) -> None:
    config = config_for(guest_page, host_page, unsync, flooding)
    machines = {m: Machine(m, config) for m in MODES}
    for i in range(len(ops)):
        op = ops[i : i + 1]
        reached = {}
        for name, machine in machines.items():
            done = [e for e in machine.step(op) if isinstance(e, Translated)]
            if int(op["kind"][0]) == O.ACCESS:
                hpa = host_address(machine, done[-1])
                reached[name] = hpa
                if done[-1].via in ("L1", "L2"):
                    assert hpa == fresh_walk(machine, int(op["addr"][0])), \
                        f"op {i}: {name}'s TLB hit disagrees with a fresh walk"
        if reached:
            assert len(set(reached.values())) == 1, f"op {i} ({O.describe(op[0])}): modes reach {reached}"
        guest = {name: tuple(m.counters()[k] for k in GUEST_COUNTERS) for name, m in machines.items()}
        assert len(set(guest.values())) == 1, \
            f"op {i} ({O.describe(op[0])}): the guest's own counters differ by mode {GUEST_COUNTERS}: {guest}"
        check_shadow(machines["shadow"])
        for machine in machines.values():
            assert_no_entry_twice(machine)


@settings(max_examples=60, deadline=None)
@given(st.data(), st.sampled_from(PAGE_PAIRS), st.booleans(), st.booleans())
def test_the_guest_does_the_same_work_in_every_mode(data, pages, unsync, flooding):
    page = E.page_bytes(E.size_code(pages[0]))
    page = max(page, 1 << 21)  # 4 KiB guest pages: regions of 2 MiB still cross host pages
    check_stream(data.draw(remap_streams(page)), *pages, unsync, flooding)


def _touch_two_then_remap(page: int):
    """Touch two 4 KiB pieces of one large guest page, unmap the page (one INVLPG, at its start),
    map the range again and touch the second piece: it must fault, as natively."""
    return O.concat([
        O.mmap(1, BASE, page, huge=True),
        O.accesses([BASE, BASE + 4096]),
        O.op(O.MUNMAP, pid=1, addr=BASE, arg=page),
        O.mmap(1, BASE, page - 4096 * 7, huge=False),
        O.accesses([BASE, BASE + 4096]),
    ])


def test_invlpg_drops_every_piece_of_a_large_guest_page():
    for guest_page in ("2m", "1g"):
        check_stream(_touch_two_then_remap(E.page_bytes(E.size_code(guest_page))), guest_page, "4k")


def test_a_forked_child_cannot_write_through_its_parents_shadow_entries():
    """Parent writes two pieces of a 2 MiB page (host 4 KiB: a direct shadow page with two
    writable entries), forks; the child reads the first piece (its shadow fill finds a direct
    page for the region) and writes the second: a copy-on-write fault in the guest, in every mode."""
    page = 1 << 21
    ops = O.concat([
        O.mmap(1, BASE, 2 * page, huge=True),
        O.accesses([BASE, BASE + 4096], rw=O.WRITE),
        O.op(O.FORK, pid=1, arg=2),
        O.op(O.SWITCH, pid=2),
        O.accesses([BASE], rw=O.READ, pid=2),
        O.accesses([BASE + 4096], rw=O.WRITE, pid=2),
    ])
    check_stream(ops, "2m", "4k")
