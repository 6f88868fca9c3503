"""A set-associative LRU structure held in flat int64 arrays.

Every cache the hardware has — L1/L2 TLBs, paging-structure caches, the
nested TLB, the nested walk cache, the data caches that serve walk
references — is one of these, so the kernels share one lookup and one fill
routine and a machine's whole cache state is five arrays plus a geometry
table (``geom[s] = (base slot, sets, ways)``; sets = 0 means "absent").

A slot holds a key (-1 = empty), an address-space tag (``asid``), a value,
flags and an LRU stamp. The set is ``index mod sets``; the victim is an empty
way, else the way with the oldest stamp (true LRU).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .layout import ST_CLOCK, TF_GLOBAL


@njit(nogil=True, cache=True, _nrt=False, inline="always")
def sa_find(geom, c_key, c_asid, c_flags, s, index, key, asid):
    """Slot holding (key, asid) in structure s, or -1. Global TLB entries match any PCID of their VPID."""
    sets = geom[s, 1]
    if sets == 0:
        return -1
    ways = geom[s, 2]
    first = geom[s, 0] + (index % sets) * ways
    for slot in range(first, first + ways):
        if c_key[slot] == key:
            tag = c_asid[slot]
            if tag == asid or ((c_flags[slot] & TF_GLOBAL) != 0 and (tag >> 12) == (asid >> 12)):
                return slot
    return -1


@njit(nogil=True, cache=True, _nrt=False, inline="always")
def sa_touch(c_stamp, st, slot):
    st[ST_CLOCK] += 1
    c_stamp[slot] = st[ST_CLOCK]


@njit(nogil=True, cache=True, _nrt=False, inline="always")
def sa_insert(geom, c_key, c_asid, c_val, c_flags, c_stamp, st, s, index, key, asid, val, flags):
    """Fill (key, asid) -> (val, flags) in structure s; returns (slot, evicted key or -1).

    An entry already present for the same key and tag is overwritten in place.
    """
    sets = geom[s, 1]
    if sets == 0:
        return -1, -1
    ways = geom[s, 2]
    first = geom[s, 0] + (index % sets) * ways
    victim = -1
    for slot in range(first, first + ways):  # refill of a present entry
        if c_key[slot] == key and c_asid[slot] == asid:
            victim = slot
            break
    if victim == -1:
        for slot in range(first, first + ways):  # an empty way
            if c_key[slot] == -1:
                victim = slot
                break
    if victim == -1:  # the least recently used way
        victim = first
        for slot in range(first + 1, first + ways):
            if c_stamp[slot] < c_stamp[victim]:
                victim = slot
    evicted = c_key[victim]
    if evicted == key and c_asid[victim] == asid:
        evicted = -1
    c_key[victim] = key
    c_asid[victim] = asid
    c_val[victim] = val
    c_flags[victim] = flags
    st[ST_CLOCK] += 1
    c_stamp[victim] = st[ST_CLOCK]
    return victim, evicted


def make_arrays(geometry: list[tuple[int, int]]):
    """Arrays for structures given as (sets, ways) each: (geom, key, asid, val, flags, stamp)."""
    n = len(geometry)
    geom = np.zeros((n, 3), dtype=np.int64)
    base = 0
    for s, (sets, ways) in enumerate(geometry):
        geom[s] = (base, sets, ways if sets else 0)
        base += sets * ways
    total = max(base, 1)
    key = np.full(total, -1, dtype=np.int64)
    asid = np.zeros(total, dtype=np.int64)
    val = np.zeros(total, dtype=np.int64)
    flags = np.zeros(total, dtype=np.int64)
    stamp = np.zeros(total, dtype=np.int64)
    return geom, key, asid, val, flags, stamp
