"""The TLBs as the general path uses them: lookups of every page size, and fills after a walk.

An L1 per page size over a unified L2; a key is the page number and size code (``vpn * 4 + size``), tagged
with the ASID. ``kernel.access`` looks up and fills here; ``fast_miss.py`` is the short form of the same for
4 KiB pages and calls the fill here for anything larger.
"""

from __future__ import annotations

from .counters import K_CYC_TLB
from .layout import C_L1, C_L2, EV_TLB, EV_TLB_FILL, S_L1_4K, S_L2, ST_ASID, ST_SIZES, TF_SIZE_MASK
from .routine import routine
from .setassoc import NARROW, sa_fill, sa_find, sa_insert, sa_touch, unsigned
from .walk import VA_MASK, emit


@routine
def l1_probe(va, geom, c, st, ev):
    """Probe the L1 arrays of every page size; a hit becomes most recent. Returns (slot or -1, structure).

    Only page sizes that have ever been filled are probed (ST_SIZES): an
    absent size cannot hit, so skipping it changes nothing but the time taken.
    """
    asid = st[ST_ASID]
    sizes = st[ST_SIZES]
    for size in range(3):
        slot = probe(geom, c, st, S_L1_4K + size, va, size, asid, sizes, ev)
        if slot >= 0:
            return slot, S_L1_4K + size
    return -1, S_L1_4K


@routine
def tlb_lookup(va, l1_missed, geom, c, st, cost, cnt, ev):
    """Probe the L1 arrays, then the L2. Returns (slot or -1, level 0/1, structure).

    `l1_missed`: the caller has just probed the L1 for va and missed (a miss changes nothing, so probing
    again would find the same).
    """
    va = va & VA_MASK
    cnt[K_CYC_TLB] += cost[C_L1]
    if not l1_missed:
        slot, s = l1_probe(va, geom, c, st, ev)
        if slot >= 0:
            return slot, 0, s
    emit(ev, st, EV_TLB, S_L1_4K, 0, -1, va >> 12, 0, 0)
    if geom[S_L2, 1] == 0:
        return -1, -1, S_L2
    cnt[K_CYC_TLB] += cost[C_L2]
    asid = st[ST_ASID]
    sizes = st[ST_SIZES]
    for size in range(3):
        slot = probe(geom, c, st, S_L2, va, size, asid, sizes, ev)
        if slot >= 0:
            return slot, 1, S_L2
    emit(ev, st, EV_TLB, S_L2, 0, -1, va >> 12, 0, 0)
    return -1, -1, S_L2


@routine
def probe(geom, c, st, s, va, size, asid, sizes, ev):
    """Look va up as a page of `size` in TLB structure s; a hit becomes most recent. Returns the slot or -1."""
    if geom[unsigned(s), 1] == 0 or (sizes >> size) & 1 == 0:
        return -1
    vpn = va >> (12 + 9 * size)
    slot = sa_find(geom, c, s, vpn, vpn * 4 + size, asid, geom[unsigned(s), 2] > NARROW)
    if slot >= 0:
        sa_touch(geom, c, st, s, slot)
        emit(ev, st, EV_TLB, s, 1, slot - geom[s, 0], vpn, size, 0)
    return slot


@routine
def tlb_fill(va, frame, size, flags, into_l2, assist, geom, c, st, ev):
    """Install a translation in the L1 for its page size, and in L2 when `into_l2`.

    An L1 that has no array for that size takes the page 'smashed' into the
    largest smaller size it has (as Zen 2 does with 1 GiB pages in its L2).
    After a miss the entry is in neither; after an `assist` (a hit re-walked
    to set D) it may be in both, and is updated where it is.
    """
    va = va & VA_MASK
    asid = st[ST_ASID]
    vpn = va >> (12 + 9 * size)
    st[ST_SIZES] |= 1 << size
    if into_l2:
        slot, evicted = tlb_put(geom, c, st, S_L2, vpn, vpn * 4 + size, asid, frame, flags, assist)
        if slot >= 0:
            emit(ev, st, EV_TLB_FILL, S_L2, slot - geom[S_L2, 0], vpn, size, evicted >> 2 if evicted >= 0 else -1, 0)
    lsize = size
    while lsize > 0 and geom[S_L1_4K + lsize, 1] == 0:
        lsize -= 1
    lvpn = va >> (12 + 9 * lsize)
    lframe = frame + (((va >> 12) & ((1 << (9 * size)) - 1)) & ~((1 << (9 * lsize)) - 1))
    lflags = (flags & ~TF_SIZE_MASK) | lsize
    s = S_L1_4K + lsize
    st[ST_SIZES] |= 1 << lsize
    slot, evicted = tlb_put(geom, c, st, s, lvpn, lvpn * 4 + lsize, asid, lframe, lflags, assist)
    if slot >= 0:
        emit(ev, st, EV_TLB_FILL, s, slot - geom[s, 0], lvpn, lsize, evicted >> 2 if evicted >= 0 else -1, 0)


@routine
def tlb_put(geom, c, st, s, index, key, asid, val, flags, assist):
    """A fill into the LRU way; after an assist, an update of the entry where it is."""
    if assist:
        return sa_insert(geom, c, st, s, index, key, asid, val, flags, True)
    return sa_fill(geom, c, st, s, index, key, asid, val, flags, True)
