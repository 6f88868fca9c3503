"""Who maps the guest's data pages: reference counts for copy-on-write and for large pages split apart.

A data page the guest allocates is a *block* of 4 KiB, 2 MiB or 1 GiB. A process maps a block
whole, or, once a partial munmap or a copy-on-write fault has split its large mapping, as 512
next-smaller *units*; fork shares whatever units a process maps. Each mapping holds one reference
on its unit and one on the unit's block, and the block goes back to the allocator with its last
reference, however it was split: Linux likewise keeps a transparent huge page's memory until its
last subpage is unmapped.

A unit is keyed by (first frame, size code), not by frame alone: a split block's first 4 KiB
unit starts at the same frame as the 2 MiB unit another process may still map whole.
"""

from __future__ import annotations

from .physmem import PhysicalMemory


class PageRefs:
    def __init__(self, mem: PhysicalMemory):
        self.mem = mem
        self.units: dict[tuple[int, int], int] = {}  # (frame, size) -> mappings of that unit
        self.block_of: dict[tuple[int, int], int] = {}  # a unit split off a block -> the block's first frame
        self.blocks: dict[int, list[int]] = {}  # block's first frame -> [size, references]

    def alloc(self, size: int) -> int:
        """A new block, mapped once; returns its first frame."""
        frame = self.mem.alloc(size)
        self.units[(frame, size)] = 1
        self.blocks[frame] = [size, 1]
        return frame

    def share(self, frame: int, size: int) -> None:
        """One more mapping of a mapped unit (fork)."""
        unit = (frame, size)
        self.units[unit] += 1
        self.blocks[self.block_of.get(unit, frame)][1] += 1

    def shared(self, frame: int, size: int) -> bool:
        """Whether a write must copy the unit: another mapping of it, or of a larger unit holding it."""
        if self.units[(frame, size)] > 1:
            return True
        return any((frame & ~((1 << (9 * larger)) - 1), larger) in self.units for larger in range(size + 1, 3))

    def release(self, frame: int, size: int) -> None:
        """One mapping of the unit gone (munmap, exit, a COW copy); frees the block with its last reference."""
        block = self._unmap(frame, size)
        refs = self.blocks[block]
        refs[1] -= 1
        if refs[1] == 0:
            del self.blocks[block]
            self.mem.free(block, refs[0])

    def split(self, frame: int, size: int) -> None:
        """One mapping of a large unit becomes mappings of its 512 next-smaller units, in the same block."""
        block = self._unmap(frame, size)
        step = 1 << (9 * (size - 1))
        for i in range(512):
            unit = (frame + i * step, size - 1)
            self.units[unit] = self.units.get(unit, 0) + 1
            self.block_of[unit] = block
        self.blocks[block][1] += 511

    def _unmap(self, frame: int, size: int) -> int:
        """Drop one mapping of the unit; returns its block."""
        unit = (frame, size)
        block = self.block_of.get(unit, frame)
        left = self.units[unit] - 1
        if left:
            self.units[unit] = left
        else:
            del self.units[unit]
            self.block_of.pop(unit, None)
        return block
