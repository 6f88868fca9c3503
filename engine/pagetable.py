"""A radix page table living in a physical memory: map, unmap, protect, software walk.

This is the software view of a table (what an OS or hypervisor does to it);
the hardware walk is compiled in ``walk.py`` and reads the same arrays.
Every entry write goes through ``write_entry`` so the owner can observe it:
under shadow paging a guest's table writes are what the hypervisor traps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

from . import entry as E
from .physmem import PhysicalMemory

WriteHook = Callable[[int, int, int, int], None]  # (table frame, index, old, new)


class PathEntry(NamedTuple):
    """One entry a walk read: its level, table frame, index and value (a tuple: walks make many)."""

    level: int
    table: int
    index: int
    value: int

    @property
    def leaf(self) -> bool:
        return bool(self.value & E.P) and (self.level == 1 or bool(self.value & E.PS))


class RadixTable:
    def __init__(self, mem: PhysicalMemory, levels: int, on_write: WriteHook | None = None, root: int | None = None):
        self.mem = mem
        self.levels = levels
        self.on_write = on_write
        self.root = mem.alloc_table() if root is None else root

    # --- entries ----------------------------------------------------------------------
    def write_entry(self, table: int, index: int, value: int) -> None:
        old = self.mem.read(table, index)
        if old == value:
            return
        self.mem.write(table, index, value)
        if self.on_write is not None:
            self.on_write(table, index, old, value)

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

    def lookup(self, va: int) -> tuple[int, int, int] | None:
        """(page frame, size code, leaf entry) mapping va, or None."""
        last = self.walk(va)[-1]
        if not last.leaf:
            return None
        return E.frame_of(last.value), last.level - 1, last.value

    # --- mapping ------------------------------------------------------------------------
    def map(self, va: int, frame: int, size_code: int, flags: int, absent: PathEntry | None = None) -> list[int]:
        """Map the page of size `size_code` holding va to `frame`; returns the table pages it allocated.

        `absent`, the first absent entry of va's path (a walk's last entry), saves walking down to it again."""
        leaf_level = size_code + 1
        table, top = (self.root, self.levels) if absent is None else (absent.table, absent.level)
        new_tables = []
        for level in range(top, leaf_level, -1):
            index = E.index_at(va, level)
            value = self.mem.read(table, index)
            if not value & E.P:
                child = self.mem.alloc_table()
                new_tables.append(child)
                self.write_entry(table, index, E.make(child, E.P | E.RW | E.US))
                table = child
            else:
                if value & E.PS:
                    raise ValueError(f"{va:#x}: a large page already covers this range")
                table = E.frame_of(value)
        leaf_flags = flags | E.P | (E.PS if size_code else 0)
        self.write_entry(table, E.index_at(va, leaf_level), E.make(frame, leaf_flags))
        return new_tables

    def set_leaf(self, va: int, value: int) -> PathEntry:
        """Rewrite the present leaf mapping va; returns the old one."""
        leaf = self.walk(va)[-1]
        if not leaf.leaf:
            raise ValueError(f"{va:#x} is not mapped")
        self.write_entry(leaf.table, leaf.index, value)
        return leaf

    def unmap(self, va: int) -> PathEntry | None:
        """Clear the leaf mapping va; returns it (None if nothing was mapped)."""
        leaf = self.walk(va)[-1]
        if not leaf.leaf:
            return None
        self.write_entry(leaf.table, leaf.index, 0)
        return leaf

    def leaves(self, table: int | None = None, level: int | None = None, va: int = 0) -> Iterator[tuple[int, PathEntry]]:
        """Every present leaf as (va, entry), in address order."""
        table = self.root if table is None else table
        level = self.levels if level is None else level
        values = self.mem.table(table)
        for index in values.nonzero()[0]:
            index = int(index)
            value = int(values[index])
            if not value & E.P:
                continue
            sub_va = va | (index << (E.PAGE_SHIFT + 9 * (level - 1)))
            entry = PathEntry(level, table, index, value)
            if entry.leaf:
                yield sub_va, entry
            else:
                yield from self.leaves(E.frame_of(value), level - 1, sub_va)

    def tables(self, table: int | None = None, level: int | None = None,
               parent: tuple[int, int] | None = None) -> Iterator[tuple[int, int, tuple[int, int] | None]]:
        """Every table page as (frame, level, (parent frame, index) or None), children before their parent."""
        table = self.root if table is None else table
        level = self.levels if level is None else level
        if level > 1:
            values = self.mem.table(table)
            for index in values.nonzero()[0]:
                value = int(values[int(index)])
                if value & E.P and not value & E.PS:
                    yield from self.tables(E.frame_of(value), level - 1, (table, int(index)))
        yield table, level, parent
