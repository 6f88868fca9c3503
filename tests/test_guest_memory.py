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
from rvi_tui.engine.pagetable import PathEntry
from rvi_tui.workloads import ops as O

M2 = 2 << 20


def table_leaves(table, start: int = 0, end: int | None = None) -> list[tuple[int, PathEntry]]:
    """Every present leaf of a RadixTable mapping part of [start, end), as (va, entry) in address order, read
    entry by entry: the reference RadixTable.leaf_runs is held to."""
    found = []

    def walk(frame: int, level: int, base: int) -> None:
        span = 1 << (E.PAGE_SHIFT + 9 * (level - 1))
        for index, value in enumerate(table.mem.table(frame).tolist()):
            va = base | (index * span)
            if not value & E.P or va + span <= start or (end is not None and va >= end):
                continue
            if level == 1 or value & E.PS:
                found.append((va, PathEntry(level, frame, index, value)))
            else:
                walk((value & E.ADDR_MASK) >> E.PAGE_SHIFT, level - 1, va)

    walk(table.root, table.levels, 0)
    return found


def mapped_frames(machine) -> set[int]:
    """Every 4 KiB guest frame some process's table maps, large leaves expanded; not the shared zero
    page, which is the kernel's, not a process's."""
    frames = set()
    for proc in machine.os.procs.values():
        for _va, leaf in table_leaves(proc.table):
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


# fork, munmap and exit work a table page at a time on arrays (pagetable.leaf_runs, PageRefs.share_many and
# release_many, PhysicalMemory.free_many, Process.writable_at): each must equal its one-at-a-time form


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0, 0, 0, 1, 2]), st.integers(0, 7), st.integers(0, (1 << 30) - 1)),
                min_size=1, max_size=40),
       st.integers(0, 8 << 30), st.integers(1, 3 << 30))
def test_leaf_runs_are_the_leaves_grouped_by_table_page(maps, start, length):
    from itertools import groupby

    from rvi_tui.engine.pagetable import RadixTable
    from rvi_tui.engine.physmem import PhysicalMemory

    mem = PhysicalMemory("g", 1 << 22)
    table = RadixTable(mem, 4)
    for size, region, offset in maps:
        va = ((region << 30) + offset) & ~((1 << (12 + 9 * size)) - 1)
        try:
            table.map(va, mem.alloc(size), size, E.P | E.RW | E.US)
        except ValueError:  # a large page already covers it, or it would cover a table
            pass
    for lo, hi in ((0, None), (start, start + length)):
        leaf_by_leaf = [(page, [(va, leaf.level, leaf.index, leaf.value) for va, leaf in run])
                        for page, run in groupby(table_leaves(table, lo, hi), key=lambda found: found[1].table)]
        runs = [(run.table, [(int(va), run.level, int(i), int(v)) for va, i, v in zip(run.vas, run.indices, run.values)])
                for run in table.leaf_runs(lo, hi)]
        assert runs == leaf_by_leaf


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["alloc4k", "alloc2m", "split", "share", "release"]),
                          st.integers(0, 10**6)), min_size=1, max_size=60))
def test_releasing_a_page_table_s_worth_frees_what_one_at_a_time_frees_in_the_same_order(steps):
    """Two allocators and their reference counts, driven alike; one releases a batch of units with release_many,
    the other one by one with release. Counts, free lists and the stack of free frames stay equal."""
    import numpy as np

    from rvi_tui.engine.page_refs import PageRefs
    from rvi_tui.engine.physmem import PhysicalMemory

    pair = [PageRefs(PhysicalMemory("g", 1 << 20)) for _ in range(2)]
    units: list[tuple[int, int]] = []  # mapped units (frame, size), a mapping each
    for what, pick in steps:
        if what.startswith("alloc"):
            size = 0 if what == "alloc4k" else 1
            frames = {refs.alloc(size) for refs in pair}
            assert len(frames) == 1
            units.append((frames.pop(), size))
        elif what == "split" and any(size == 1 for _, size in units):
            frame, size = [u for u in units if u[1] == 1][pick % sum(u[1] == 1 for u in units)]
            units.remove((frame, size))
            for refs in pair:
                refs.split(frame, size)
            units += [(frame + i, 0) for i in range(512)]
        elif what == "share" and units:
            unit = units[pick % len(units)]
            for refs in pair:
                refs.share(*unit)
            units.append(unit)
        elif what == "release" and units:
            size = units[pick % len(units)][1]
            batch = [u for u in units if u[1] == size][: 1 + pick % 700]
            for unit in batch:
                units.remove(unit)
                pair[1].release(*unit)
            pair[0].release_many(np.array([frame for frame, _ in batch], dtype=np.int64), size)
        a, b = pair
        assert (a.counts == b.counts).all()
        assert a.mem.free_4k() == b.mem.free_4k() and a.mem._free_2m == b.mem._free_2m
        assert a.mem.frames_in_use == b.mem.frames_in_use


def test_writable_at_is_vma_at_on_each_address():
    import numpy as np

    from rvi_tui.engine.guest_os import Process, Vma

    proc = Process(1, None, 0, [Vma(0x1000, 0x5000, True, False), Vma(0x5000, 0x9000, False, False),
                                Vma(0x20000, 0x30000, True, False)])
    vas = np.arange(0, 0x40000, 0x800, dtype=np.int64)
    want = [(v := proc.vma_at(int(va))) is not None and v.writable for va in vas]
    assert proc.writable_at(vas).tolist() == want
    assert not Process(2, None, 0, []).writable_at(vas).any()
