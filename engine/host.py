"""The host: where guest-physical memory lives in host-physical memory.

The hypervisor backs guest memory on first touch with 4 KiB or 2 MiB host
pages. *Where* a guest page lands (the placement) is a fixed bijection of its
guest frame, independent of the order pages are touched in, so that native,
shadow and nested machines fed the same ops translate every access to the
same host-physical address (DESIGN.md's functional invariant) while each still
pays its own first-touch exits.

Host memory layout: [0, guest memory) backs guest RAM; host table pages (the
nested table, shadow tables) are allocated above it.
"""

from __future__ import annotations

import numpy as np

from . import entry as E
from .fast_fault import host_frame
from .pagetable import RadixTable
from .physmem import PhysicalMemory


class Placement:
    """gPA frame -> hPA frame, scattering host pages over host RAM."""

    def __init__(self, guest_frames: int, host_size: int):
        self.host_size = host_size
        self.unit_bits = 9 * host_size
        self.bits = guest_frames.bit_length() - 1 - self.unit_bits  # host pages in guest RAM = 2**bits
        self.mask = (1 << self.bits) - 1

    def __call__(self, gfn: int) -> int:
        return host_frame(gfn, self.unit_bits, self.mask)


class Host:
    """Host-physical memory, the placement, and (for nested paging) the nested table."""

    def __init__(self, guest_frames: int, host_size: int, nested_levels: int, with_nested_table: bool):
        self.guest_frames = guest_frames
        self.host_size = host_size
        self.placement = Placement(guest_frames, host_size)
        # table pages live above guest RAM; give them as much room as guest RAM itself
        self.mem = PhysicalMemory("host", frames=guest_frames, base=guest_frames)
        self.nested = RadixTable(self.mem, nested_levels) if with_nested_table else None
        # 1 for each host page (in units of the host page size, by guest frame) backing guest memory; it grows
        # with the guest frames in use (cover), and a unit past its end is not backed
        self.backed = np.zeros(64, dtype=np.uint8)

    def unit(self, gfn: int) -> int:
        """The host page (in host page units) holding guest frame gfn."""
        return gfn >> self.placement.unit_bits

    def is_backed(self, gfn: int) -> bool:
        unit = self.unit(gfn)
        return unit < len(self.backed) and bool(self.backed[unit])

    def cover(self, frames: int) -> np.ndarray:
        """The backed array, grown if needed to hold a unit for each guest frame below `frames`."""
        units = self.unit(max(frames, 1) - 1) + 1
        if units > len(self.backed):
            grown = np.zeros(max(units, 2 * len(self.backed)), dtype=np.uint8)
            grown[: len(self.backed)] = self.backed
            self.backed = grown
        return self.backed

    def back(self, gfn: int) -> tuple[int, int]:
        """Map the host page holding guest frame gfn in the nested table; returns (gPA page, hPA page) frames."""
        unit_frames = 1 << (9 * self.host_size)
        gpage = gfn & ~(unit_frames - 1)
        hpage = self.placement(gpage)
        self.nested.map(gpage << E.PAGE_SHIFT, hpage, self.host_size, E.RW | E.US)
        return gpage, hpage
