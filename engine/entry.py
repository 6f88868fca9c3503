"""x86-64 page-table entry format, levels and page sizes.

Bit positions are the architectural ones (Intel SDM Vol. 3A §4.5, AMD APM
Vol. 2 §5.3): an entry is a 64-bit word with P, RW, US, A, D, PS, G in the low
bits, the frame address in bits 12..51 and NX in bit 63. Entries are stored
as int64 (same bits) so numba kernels never mix signed and unsigned integers.
"""

from __future__ import annotations

P = 1 << 0
RW = 1 << 1
US = 1 << 2
A = 1 << 5
D = 1 << 6
PS = 1 << 7
G = 1 << 8
NX = -(1 << 63)  # bit 63 as a signed int64
ADDR_MASK = 0x000F_FFFF_FFFF_F000

ENTRIES_PER_TABLE = 512
PAGE_SHIFT = 12
PAGE_4K = 0
PAGE_2M = 1
PAGE_1G = 2
PAGE_SIZE_NAMES = ("4k", "2m", "1g")
PAGE_SIZE_LABELS = ("4 KiB", "2 MiB", "1 GiB")


def page_shift(size_code: int) -> int:
    """4 KiB -> 12, 2 MiB -> 21, 1 GiB -> 30."""
    return PAGE_SHIFT + 9 * size_code


def page_bytes(size_code: int) -> int:
    return 1 << page_shift(size_code)


def size_code(name: str) -> int:
    """'4k' / '2m' / '1g' -> page size code."""
    return PAGE_SIZE_NAMES.index(name.lower())


def index_at(va: int, level: int) -> int:
    """The 9-bit table index that level `level` (1 = PT ... 5 = PML5) takes from va."""
    return (va >> (PAGE_SHIFT + 9 * (level - 1))) & 511


def va_bits(levels: int) -> int:
    """48 for 4-level paging, 57 for 5-level (LA57)."""
    return PAGE_SHIFT + 9 * levels


def is_canonical(va: int, levels: int) -> bool:
    """Bits above the top VA bit must all copy it (sign extension)."""
    top = va_bits(levels) - 1
    high = va >> top
    return high == 0 or high == (1 << (64 - top)) - 1


def make(frame: int, flags: int) -> int:
    """An entry pointing at 4 KiB frame number `frame` with `flags`."""
    return ((frame << PAGE_SHIFT) & ADDR_MASK) | flags


def frame_of(entry: int) -> int:
    return (entry & ADDR_MASK) >> PAGE_SHIFT


LEVEL_NAMES = {1: "PT", 2: "PD", 3: "PDPT", 4: "PML4", 5: "PML5"}


def flags_text(entry: int) -> str:
    """Flags as letters, absent ones as '-': 'P W U A D S G X' order (S = PS, X = NX)."""
    bits = (
        ("P", P),
        ("W", RW),
        ("U", US),
        ("A", A),
        ("D", D),
        ("S", PS),
        ("G", G),
    )
    text = "".join(ch if entry & bit else "-" for ch, bit in bits)
    return text + ("X" if entry < 0 else "-")
