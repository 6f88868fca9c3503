"""A radix page table living in a physical memory: map, unmap, protect, software walk.

This is the software view of a table (what an OS or hypervisor does to it);
the hardware walk is compiled in ``walk.py`` and reads the same arrays.
Every entry write goes through ``write_entry`` so the owner can observe it:
under shadow paging a guest's table writes are what the hypervisor traps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from . import entry as E
from .fast_fault import leaf_entry
from .physmem import PhysicalMemory

# (table frame, indices, old values, new values) of entries of one table page written, in the order written
WriteHook = Callable[[int, list[int], list[int], list[int]], None]


class PathEntry(NamedTuple):
    """One entry a walk read: its level, table frame, index and value (a tuple: walks make many)."""

    level: int
    table: int
    index: int
    value: int

    @property
    def leaf(self) -> bool:
        return bool(self.value & E.P) and (self.level == 1 or bool(self.value & E.PS))


class LeafRun(NamedTuple):
    """Consecutive present leaves of one table page, as arrays: what fork, munmap and exit work through, a table
    page at a time."""

    table: int
    level: int
    vas: np.ndarray  # the address each leaf maps from
    indices: np.ndarray
    values: np.ndarray


class RadixTable:
    def __init__(self, mem: PhysicalMemory, levels: int, on_write: WriteHook | None = None, root: int | None = None):
        self.mem = mem
        self.levels = levels
        self.on_write = on_write
        self.root = mem.alloc_table() if root is None else root

    # --- entries ----------------------------------------------------------------------
    def write_entry(self, table: int, index: int, value: int) -> None:
        mem = self.mem
        row = mem.row(table)
        old = mem.tables.item(row, index)
        if old == value:
            return
        mem.tables[row, index] = value
        if self.on_write is not None:
            self.on_write(table, [index], [old], [value])

    def write_entries(self, table: int, indices: list[int], values: list[int]) -> None:
        """Write entries of one table page, in order (as write_entry on each: the owner sees those that change)."""
        mem = self.mem
        row = mem.row(table)
        where = np.asarray(indices, dtype=np.int64)
        new = np.asarray(values, dtype=np.int64)
        old = mem.tables[row, where]
        changed = old != new
        if not changed.any():
            return
        where, old, new = where[changed], old[changed], new[changed]
        mem.tables[row, where] = new
        if self.on_write is not None:
            self.on_write(table, where.tolist(), old.tolist(), new.tolist())

    def walk(self, va: int) -> list[PathEntry]:
        """The entries a walk of va reads, root first, down to the leaf or the first absent entry."""
        path = []
        table = self.root
        read = self.mem.read
        for level in range(self.levels, 0, -1):
            index = (va >> (E.PAGE_SHIFT + 9 * (level - 1))) & 511
            value = read(table, index)
            path.append(PathEntry(level, table, index, value))
            if not value & E.P or level == 1 or value & E.PS:
                break
            table = (value & E.ADDR_MASK) >> E.PAGE_SHIFT
        return path

    def last(self, va: int) -> PathEntry:
        """The last entry a walk of va reads: the leaf, or the first absent entry."""
        table = self.root
        mem = self.mem
        for level in range(self.levels, 0, -1):
            index = (va >> (E.PAGE_SHIFT + 9 * (level - 1))) & 511
            value = mem.tables.item(mem.row(table), index)
            if not value & E.P or level == 1 or value & E.PS:
                return PathEntry(level, table, index, value)
            table = (value & E.ADDR_MASK) >> E.PAGE_SHIFT
        raise AssertionError("unreachable: level 1 always ends a walk")

    def lookup(self, va: int) -> tuple[int, int, int] | None:
        """(page frame, size code, leaf entry) mapping va, or None."""
        last = self.last(va)
        if not last.leaf:
            return None
        return E.frame_of(last.value), last.level - 1, last.value

    # --- mapping ------------------------------------------------------------------------
    def map(self, va: int, frame: int, size_code: int, flags: int, absent: PathEntry | None = None) -> int:
        """Map the page of size `size_code` holding va to `frame`, making the table pages it needs; returns the
        table page the leaf entry is in.

        `absent`, the first absent entry of va's path (a walk's last entry), saves walking down to it again."""
        leaf_level = size_code + 1
        table, top = (self.root, self.levels) if absent is None else (absent.table, absent.level)
        for level in range(top, leaf_level, -1):
            index = E.index_at(va, level)
            value = self.mem.read(table, index)
            if not value & E.P:
                child = self.mem.alloc_table()
                self.write_entry(table, index, E.make(child, E.P | E.RW | E.US))
                table = child
            else:
                if value & E.PS:
                    raise ValueError(f"{va:#x}: a large page already covers this range")
                table = E.frame_of(value)
        self.write_entry(table, E.index_at(va, leaf_level), leaf_entry(frame, size_code, flags))
        return table

    def set_leaf(self, va: int, value: int) -> PathEntry:
        """Rewrite the present leaf mapping va; returns the old one."""
        leaf = self.last(va)
        if not leaf.leaf:
            raise ValueError(f"{va:#x} is not mapped")
        self.write_entry(leaf.table, leaf.index, value)
        return leaf

    def unmap(self, va: int) -> PathEntry | None:
        """Clear the leaf mapping va; returns it (None if nothing was mapped)."""
        leaf = self.last(va)
        if not leaf.leaf:
            return None
        self.write_entry(leaf.table, leaf.index, 0)
        return leaf

    def leaf_runs(self, start: int = 0, end: int | None = None) -> list[LeafRun]:
        """Every present leaf mapping part of [start, end) (everything by default), in address order, in runs:
        each run the leaves that follow each other in one table page (a table pointer in between ends a run).
        A page of 4 KiB leaves is one run, read at once."""
        runs: list[LeafRun] = []
        self._leaf_runs(self.root, self.levels, 0, start, end, runs)
        return runs

    def _leaf_runs(self, table: int, level: int, base: int, start: int, end: int | None, runs: list) -> None:
        shift = E.PAGE_SHIFT + 9 * (level - 1)
        first = max(0, (start - base) >> shift)
        last = 512 if end is None else min(512, ((end - 1 - base) >> shift) + 1)
        if first >= last:
            return
        values = self.mem.table(table)[first:last]
        where = np.flatnonzero(values & E.P)
        if not len(where):
            return
        present = values[where]
        indices = where + first
        leaf = np.ones(len(where), dtype=bool) if level == 1 else (present & E.PS) != 0
        if leaf.all():
            runs.append(LeafRun(table, level, base | (indices << shift), indices, present))
            return
        cuts = np.flatnonzero(~leaf)  # table pointers, each between two runs
        begin = 0
        for cut in cuts.tolist() + [len(where)]:
            if cut > begin:
                part = indices[begin:cut]
                runs.append(LeafRun(table, level, base | (part << shift), part, present[begin:cut]))
            if cut < len(where):
                index = int(indices[cut])
                self._leaf_runs(int(present[cut] & E.ADDR_MASK) >> E.PAGE_SHIFT, level - 1, base | (index << shift),
                                start, end, runs)
            begin = cut + 1

    def _entries(self, table: int, level: int, base: int, start: int, end: int | None) -> list[tuple[int, int]]:
        """(index, value) of the present entries of a table page (level, mapping from va `base`) whose span
        overlaps [start, end)."""
        shift = E.PAGE_SHIFT + 9 * (level - 1)
        first = max(0, (start - base) >> shift)
        last = 512 if end is None else min(512, ((end - 1 - base) >> shift) + 1)
        if first >= last:
            return []
        values = self.mem.table(table)[first:last]
        where = values.nonzero()[0]
        return [(int(i) + first, v) for i, v in zip(where.tolist(), values[where].tolist()) if v & E.P]

    def tables(self, start: int = 0, end: int | None = None) -> list[tuple[int, int, tuple[int, int] | None]]:
        """Every table page with a part of [start, end) under it (every one by default) as (frame, level,
        (parent frame, index) or None), children before their parent."""
        found: list[tuple[int, int, tuple[int, int] | None]] = []
        self._tables(self.root, self.levels, 0, None, start, end, found)
        return found

    def _tables(self, table: int, level: int, base: int, parent, start: int, end: int | None, found: list) -> None:
        if level > 1:
            for index, value in self._entries(table, level, base, start, end):
                if not value & E.PS:
                    va = base | (index << (E.PAGE_SHIFT + 9 * (level - 1)))
                    self._tables((value & E.ADDR_MASK) >> E.PAGE_SHIFT, level - 1, va, (table, index), start, end, found)
        found.append((table, level, parent))
