"""Who maps the guest's data pages: reference counts for copy-on-write and for large pages split apart.

A data page the guest allocates is a *block* of 4 KiB, 2 MiB or 1 GiB. A process maps a block
whole, or, once a partial munmap or a copy-on-write fault has split its large mapping, as 512
next-smaller *units*; fork shares whatever units a process maps. Each mapping holds one reference
on its unit and one on the unit's block, and the block goes back to the allocator with its last
reference, however it was split: Linux likewise keeps a transparent huge page's memory until its
last subpage is unmapped.

A unit is a (first frame, size code) pair, not a frame alone: a split block's first 4 KiB unit
starts at the same frame as the 2 MiB unit another process may still map whole. The counts are
one int32 array (layout ``REFS_BLOCK``): a row per unit size and a row per block size, a column
per aligned frame of that size, which the fast fault path (``fast_fault.py``) reads and writes
with the same routines. A unit's block is the one allocated block that holds its first frame.
"""

from __future__ import annotations

import numpy as np

from .fast_fault import refs_block, refs_new, refs_shared, refs_unmap
from .layout import REFS_BLOCK
from .physmem import PhysicalMemory


class PageRefs:
    def __init__(self, mem: PhysicalMemory):
        self.mem = mem
        self.counts = np.zeros((2 * REFS_BLOCK, 512), dtype=np.int32)

    def cover(self, frames: int) -> np.ndarray:
        """The counts, grown if needed to have a column for each frame below `frames`."""
        if frames > self.counts.shape[1]:
            grown = np.zeros((self.counts.shape[0], max(frames, 2 * self.counts.shape[1])), dtype=np.int32)
            grown[:, : self.counts.shape[1]] = self.counts
            self.counts = grown
        return self.counts

    def alloc(self, size: int) -> int:
        """A new block, mapped once; returns its first frame."""
        frame = self.mem.alloc(size)
        refs_new(self.cover(self.mem.top), frame, size)
        return frame

    def share(self, frame: int, size: int) -> None:
        """One more mapping of a mapped unit (fork)."""
        counts = self.counts
        counts[size, frame >> (9 * size)] += 1
        block, bsize = refs_block(counts, frame, size)
        counts[REFS_BLOCK + bsize, block >> (9 * bsize)] += 1

    def share_many(self, frames: np.ndarray, size: int) -> None:
        """share() on each of these mapped units (fork, a table page at a time): finding a unit's block reads
        only whether blocks are there, which sharing does not change, so the order does not matter."""
        block, bsize = self._blocks(frames, size)
        flat = self.counts.reshape(-1)
        np.add.at(flat, size * self.counts.shape[1] + (frames >> (9 * size)), 1)
        np.add.at(flat, (REFS_BLOCK + bsize) * self.counts.shape[1] + (block >> (9 * bsize)), 1)

    def release_many(self, frames: np.ndarray, size: int) -> None:
        """release() on each of these units in order (munmap, exit, a table page at a time), the blocks freed in
        the order their last references go. Each mapping holds a reference on its block, so no block is freed
        before its last unit here: every unit's block is found before any count changes."""
        block, bsize = self._blocks(frames, size)
        flat = self.counts.reshape(-1)
        width = self.counts.shape[1]
        np.subtract.at(flat, size * width + (frames >> (9 * size)), 1)
        where = (REFS_BLOCK + bsize) * width + (block >> (9 * bsize))
        blocks, from_end = np.unique(where[::-1], return_index=True)
        last = len(where) - 1 - from_end  # each block's last reference
        np.subtract.at(flat, where, 1)
        freed = np.sort(last[flat[blocks] == 0])
        for b in np.unique(bsize[freed]).tolist():  # the sizes' free lists are apart: only each one's order matters
            self.mem.free_many(block[freed[bsize[freed] == b]], b)

    def _blocks(self, frames: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        """refs_block of each unit (frames[i], size): (first frames, sizes) of their blocks."""
        block = np.full(len(frames), -1, dtype=np.int64)
        bsize = np.full(len(frames), -1, dtype=np.int64)
        for b in range(size, REFS_BLOCK):
            column = frames >> (9 * b)
            hit = (bsize < 0) & (self.counts[REFS_BLOCK + b, column] != 0)
            block[hit] = column[hit] << (9 * b)
            bsize[hit] = b
        if (bsize < 0).any():
            raise AssertionError(f"unit {int(frames[bsize < 0][0]):#x} of size {size} lies in no block")
        return block, bsize

    def shared(self, frame: int, size: int) -> bool:
        """Whether a write must copy the unit: another mapping of it, or of a larger unit holding it."""
        return bool(refs_shared(self.counts, frame, size))

    def release(self, frame: int, size: int) -> None:
        """One mapping of the unit gone (munmap, exit, a COW copy); frees the block with its last reference."""
        block, bsize = refs_unmap(self.counts, frame, size)
        self.counts[REFS_BLOCK + bsize, block >> (9 * bsize)] -= 1
        if not self.counts[REFS_BLOCK + bsize, block >> (9 * bsize)]:
            self.mem.free(block, bsize)

    def split(self, frame: int, size: int) -> None:
        """One mapping of a large unit becomes mappings of its 512 next-smaller units, in the same block."""
        block, bsize = refs_unmap(self.counts, frame, size)
        self.counts[size - 1, (frame >> (9 * (size - 1))) + np.arange(512)] += 1
        self.counts[REFS_BLOCK + bsize, block >> (9 * bsize)] += 511

    # --- views, for checks ----------------------------------------------------------------------
    @property
    def units(self) -> dict[tuple[int, int], int]:
        """(first frame, size) -> mappings of every mapped unit."""
        return {(int(i) << (9 * s), s): int(self.counts[s, i])
                for s in range(REFS_BLOCK) for i in np.flatnonzero(self.counts[s])}

    @property
    def blocks(self) -> dict[int, list[int]]:
        """First frame -> [size, references] of every allocated data block."""
        return {int(i) << (9 * s): [s, int(self.counts[REFS_BLOCK + s, i])]
                for s in range(REFS_BLOCK) for i in np.flatnonzero(self.counts[REFS_BLOCK + s])}

    @property
    def block_of(self) -> dict[tuple[int, int], int]:
        """A unit split off a block -> the block's first frame."""
        found = {}
        for unit in self.units:
            block, bsize = refs_block(self.counts, *unit)
            if (block, bsize) != unit:
                found[unit] = block
        return found
