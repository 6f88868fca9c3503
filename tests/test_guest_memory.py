"""The guest's memory accounting, checked against its page tables: a data page is freed with its
last mapping and never while a process maps it, through fork, copy-on-write, exit and large pages
that a partial munmap splits (a split 2 MiB page stays allocated while any of its 4 KiB pieces
is mapped, by the process that split it or by another that still maps it whole)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from machine_helpers import BASE, cfg_from
from op_streams import REGION, op_streams
from rvi_tui.engine import entry as E
from rvi_tui.engine.machine import Machine
from rvi_tui.workloads import ops as O

M2 = 2 << 20


def mapped_frames(machine) -> set[int]:
    """Every 4 KiB guest frame some process's table maps, large leaves expanded; not the shared zero
    page, which is the kernel's, not a process's."""
    frames = set()
    for proc in machine.os.procs.values():
        for _va, leaf in proc.table.leaves():
            first = E.frame_of(leaf.value)
            frames.update(range(first, first + (1 << (9 * (leaf.level - 1)))))
    frames.discard(machine.os.zero_frame)
    return frames


def kernel_frames(machine) -> int:
    """Frames the guest kernel holds for itself: the zero page once some read fault has mapped it."""
    return 0 if machine.os.zero_frame is None else 1


def check_accounting(machine) -> None:
    """Every mapped frame is allocated, in a live block; every live block holds a mapped frame;
    the allocator's count is the table pages plus the live blocks."""
    mem, pages = machine.gmem, machine.os.pages
    mapped = mapped_frames(machine)
    assert not [f for f in mapped if mem.is_free(f)], "a mapped frame was freed"
    spans = {first: 1 << (9 * size) for first, (size, _refs) in pages.blocks.items()}
    assert all(any(first <= f < first + n for first, n in spans.items()) for f in mapped)
    assert all(any(f in mapped for f in range(first, first + n)) for first, n in spans.items()), \
        "a block no process maps is still allocated"
    assert machine.os.zero_frame is None or not mem.is_free(machine.os.zero_frame), "the zero page was freed"
    assert mem.frames_in_use == mem.table_pages + sum(spans.values()) + kernel_frames(machine)
    zero = machine.os.zero_frame
    assert zero is None or all(not first <= zero < first + n for first, n in spans.items()), \
        "the zero page is counted as a process's memory"


def tear_down(machine) -> None:
    """Every process but the first exits and the first unmaps everything it could have touched."""
    for pid in [p for p in machine.os.procs if p != 1]:
        machine.run(O.op(O.EXIT, pid=pid))
    machine.run(O.op(O.SWITCH, pid=1))
    machine.run(O.op(O.MUNMAP, pid=1, addr=BASE - M2, arg=REGION + 8 * M2))


def test_a_split_shared_large_page_is_freed_when_its_last_piece_goes():
    """The parent maps a 2 MiB page whole, the child splits its copy by unmapping one 4 KiB piece;
    whichever exits first, the block is freed with the last mapping and not before."""
    for first_out in (1, 2):
        m = Machine("native", cfg_from({"guest.page": "2m", "guest.mem_gib": 1}))
        m.run(O.concat([O.mmap(1, BASE, 2 * M2), O.accesses([BASE, BASE + M2], rw=O.WRITE),
                        O.op(O.FORK, pid=1, arg=2), O.op(O.MUNMAP, pid=2, addr=BASE + 4096, arg=4096)]))
        check_accounting(m)
        m.run(O.op(O.EXIT, pid=first_out))
        check_accounting(m)
        assert m.gmem.frames_in_use >= 2 * 512  # both blocks still mapped by the survivor
        if first_out == 1:
            m.run(O.op(O.EXIT, pid=2))
            assert m.gmem.frames_in_use == 0
        else:
            tear_down(m)
            assert m.gmem.frames_in_use == m.gmem.table_pages == 1  # the root alone
        assert not m.os.pages.units and not m.os.pages.blocks


def test_a_write_to_a_shared_2m_page_splits_it_and_copies_only_the_4k_page_written():
    """Linux since 5.8 ("thp: change CoW semantics for anon-THP"): the writer's 2 MiB mapping
    becomes 512 4 KiB ones, one of them a fresh copy; the other process keeps the page whole."""
    m = Machine("native", cfg_from({"guest.page": "2m", "guest.mem_gib": 1}))
    m.run(O.concat([O.mmap(1, BASE, M2), O.accesses([BASE], rw=O.WRITE), O.op(O.FORK, pid=1, arg=2)]))
    shared, size, _ = m.os.procs[2].table.lookup(BASE)
    assert size == E.PAGE_2M
    before = m.gmem.frames_in_use
    m.run(O.accesses([BASE + 5 * 4096 + 8], rw=O.WRITE))  # by pid 1, the current process
    parent = [m.os.procs[1].table.lookup(BASE + i * 4096) for i in range(512)]
    assert {size for _, size, _ in parent} == {E.PAGE_4K}
    assert [frame for frame, _, _ in parent] == [shared + i if i != 5 else parent[5][0] for i in range(512)]
    assert not shared <= parent[5][0] < shared + 512  # the page written is a copy
    assert m.os.procs[2].table.lookup(BASE)[:2] == (shared, E.PAGE_2M)
    assert m.gmem.frames_in_use == before + 2  # the copy and the new page table
    assert m.counters()["cow_faults"] == 1
    check_accounting(m)
    m.run(O.accesses([BASE + 6 * 4096], rw=O.WRITE))  # another piece: the child still maps it, so copied too
    assert m.gmem.frames_in_use == before + 3
    m.run(O.concat([O.op(O.EXIT, pid=2), O.accesses([BASE + 7 * 4096], rw=O.WRITE)]))
    assert m.os.procs[1].table.lookup(BASE + 7 * 4096)[0] == shared + 7  # alone now: made writable in place
    check_accounting(m)


@settings(max_examples=40, deadline=None)
@given(op_streams(max_ops=80), st.sampled_from(["4k", "2m"]))
def test_guest_memory_follows_the_tables_and_comes_back_whole(ops, guest_page):
    m = Machine("native", cfg_from({"guest.page": guest_page, "guest.mem_gib": 1}))
    for i in range(len(ops)):
        m.run(ops[i : i + 1])
        check_accounting(m)
    tear_down(m)
    check_accounting(m)
    assert m.gmem.frames_in_use - kernel_frames(m) == m.gmem.table_pages == 1
    assert not m.os.pages.units and not m.os.pages.blocks
