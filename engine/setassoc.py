"""A set-associative LRU structure held in flat int64 arrays.

Every cache the hardware has — L1/L2 TLBs, paging-structure caches, the
nested TLB, the nested walk cache, the data caches that serve walk
references — is one of these, so the kernels share one lookup and one fill
routine and a machine's whole cache state is five arrays plus a geometry
table (``geom[s] = (base slot, sets, ways, sets-1 or -1)``; sets = 0 means
"absent"; the last column is the index mask when sets is a power of two).

A slot (a column of ``c``) holds a key (-1 = empty), an address-space tag (``asid``), a value,
flags and an LRU stamp. The set is ``index mod sets``; the victim is an empty
way, else the way with the oldest stamp (true LRU).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .layout import ST_CLOCK, TF_GLOBAL

KEY, ASID, VAL, FLAGS, STAMP = range(5)  # rows of the slot array


@njit(nogil=True, cache=True, _nrt=False, inline="always")
def set_of(geom, s, index):
    """index mod sets; a mask when sets is a power of two (a 64-bit divide costs ~40 cycles)."""
    mask = geom[s, 3]
    if mask >= 0:
        return index & mask
    return index % geom[s, 1]


@njit(nogil=True, cache=True, _nrt=False, inline="always")
def sa_find(geom, c, s, index, key, asid):
    """Slot holding (key, asid) in structure s, or -1. Global TLB entries match any PCID of their VPID."""
    sets = geom[s, 1]
    if sets == 0:
        return -1
    ways = geom[s, 2]
    first = geom[s, 0] + set_of(geom, s, index) * ways
    for slot in range(first, first + ways):
        if c[0, slot] == key:
            tag = c[1, slot]
            if tag == asid or ((c[3, slot] & TF_GLOBAL) != 0 and (tag >> 12) == (asid >> 12)):
                return slot
    return -1


@njit(nogil=True, cache=True, _nrt=False, inline="always")
def sa_touch(c, st, slot):
    st[ST_CLOCK] += 1
    c[4, slot] = st[ST_CLOCK]


@njit(nogil=True, cache=True, _nrt=False, inline="always")
def sa_insert(geom, c, st, s, index, key, asid, val, flags):
    """Fill (key, asid) -> (val, flags) in structure s; returns (slot, evicted key or -1).

    An entry already present for the same key and tag is overwritten in place.
    """
    sets = geom[s, 1]
    if sets == 0:
        return -1, -1
    ways = geom[s, 2]
    first = geom[s, 0] + set_of(geom, s, index) * ways
    victim = -1
    for slot in range(first, first + ways):  # refill of a present entry
        if c[0, slot] == key and c[1, slot] == asid:
            victim = slot
            break
    if victim == -1:
        for slot in range(first, first + ways):  # an empty way
            if c[0, slot] == -1:
                victim = slot
                break
    if victim == -1:  # the least recently used way
        victim = first
        for slot in range(first + 1, first + ways):
            if c[4, slot] < c[4, victim]:
                victim = slot
    evicted = c[0, victim]
    if evicted == key and c[1, victim] == asid:
        evicted = -1
    c[0, victim] = key
    c[1, victim] = asid
    c[2, victim] = val
    c[3, victim] = flags
    st[ST_CLOCK] += 1
    c[4, victim] = st[ST_CLOCK]
    return victim, evicted


def make_arrays(geometry: list[tuple[int, int]]):
    """(geom, c) for structures given as (sets, ways) each.

    ``c`` is int64[5, slots]: rows KEY, ASID, VAL, FLAGS, STAMP. One array
    rather than five keeps the compiled calls cheap.
    """
    n = len(geometry)
    geom = np.zeros((n, 4), dtype=np.int64)
    base = 0
    for s, (sets, ways) in enumerate(geometry):
        pow2 = sets > 0 and sets & (sets - 1) == 0
        geom[s] = (base, sets, ways if sets else 0, sets - 1 if pow2 else -1)
        base += sets * ways
    c = np.zeros((5, max(base, 1)), dtype=np.int64)
    c[KEY] = -1
    return geom, c
