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

from . import entry as E
from .pagetable import RadixTable
from .physmem import PhysicalMemory

_MIX = 0x9E3779B1  # odd: multiplication by it is a bijection modulo 2^k


class Placement:
    """gPA frame -> hPA frame, scattering host pages over host RAM."""

    def __init__(self, guest_frames: int, host_size: int):
        self.host_size = host_size
        self.unit_bits = 9 * host_size
        self.bits = guest_frames.bit_length() - 1 - self.unit_bits  # host pages in guest RAM = 2**bits
        self.mask = (1 << self.bits) - 1

    def host_page(self, unit: int) -> int:
        return ((unit * _MIX) ^ (self.mask >> 1)) & self.mask

    def __call__(self, gfn: int) -> int:
        unit = gfn >> self.unit_bits
        offset = gfn & ((1 << self.unit_bits) - 1)
        return (self.host_page(unit) << self.unit_bits) | offset


class Host:
    """Host-physical memory, the placement, and (for nested paging) the nested table."""

    def __init__(self, guest_frames: int, host_size: int, nested_levels: int, with_nested_table: bool):
        self.guest_frames = guest_frames
        self.host_size = host_size
        self.placement = Placement(guest_frames, host_size)
        # table pages live above guest RAM; give them as much room as guest RAM itself
        self.mem = PhysicalMemory("host", frames=guest_frames, base=guest_frames)
        self.nested = RadixTable(self.mem, nested_levels) if with_nested_table else None
        self.backed: set[int] = set()  # host pages (in units of the host page size) backing guest memory
        self.backed_pages = 0

    def is_backed(self, gfn: int) -> bool:
        return gfn >> (9 * self.host_size) in self.backed

    def touch(self, gfn: int) -> bool:
        """Back the host page holding guest frame gfn if it is not yet; returns whether it was newly backed.

        The same in every virtualized mode: KVM allocates the host page inside whichever fault first needs
        the frame (kvm_faultin_pfn -> __gfn_to_pfn_memslot -> hva_to_pfn, which faults the page into the
        VMM's address space), be it a nested page fault or a shadow page fault."""
        unit = gfn >> (9 * self.host_size)
        if unit in self.backed:
            return False
        self.backed.add(unit)
        self.backed_pages += 1
        return True

    def back(self, gfn: int) -> tuple[int, int]:
        """Map the host page holding guest frame gfn in the nested table; returns (gPA page, hPA page) frames."""
        unit_frames = 1 << (9 * self.host_size)
        gpage = gfn & ~(unit_frames - 1)
        hpage = self.placement(gpage)
        self.nested.map(gpage << E.PAGE_SHIFT, hpage, self.host_size, E.RW | E.US)
        self.touch(gfn)
        return gpage, hpage
