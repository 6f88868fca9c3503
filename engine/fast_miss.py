"""The batch path's TLB miss while only 4 KiB pages are in the TLBs: the L2 probe, a walk, and the fills, short.

A miss in the general path (``kernel.access``) goes through routines written for every case: any page size
in any TLB, events, the data caches. On a miss-heavy stream that generality was most of a miss's time
(README, Speed: each general routine cost 7-8%, and no single one held the gap). This is the same hardware
for the case a big scattered working set lives in — the batch path, no data-cache model, and no page larger
than 4 KiB in the TLBs yet — written for it:

* the L2's set scans, the walk caches' and the nested TLB's are one vector compare each, without an early
  exit (``setassoc.wide_first_way``): a miss compares every way anyway, and a hit at a random way is an exit
  the host mispredicts;
* the L2's victim comes from an order word per set (``lru_order.py``), kept beside the stamps as a cache that
  lives for one kernel call (``l2_order``), where stamps need a scan of the set;
* every mode walks with the general path's ``walk.translate`` (``walk_1d``, or ``walk_2d`` for nested
  paging), told to scan that way.

It is a second copy of the miss logic, so it is held to the first: it takes an access only where it can
finish it exactly as ``access`` would (a write that needs the walker to set D on a TLB hit goes back
untouched), and the tests run both on the same streams and compare every counter, every cache entry with
its LRU order and every table entry (``tests/test_fast_miss.py``). The step path never takes it.
"""

from __future__ import annotations

from .layout import (
    S_L1_4K,
    S_L2,
    ST_ASID,
    ST_CACHE_ON,
    ST_FAST_MISS,
    ST_SIZES,
    STOP_DONE,
    TF_DIRTY,
    TF_WRITABLE,
)
from .lru_order import ORDER_WAYS, order_of_stamps, order_to_top
from .routine import routine
from .setassoc import FLAGS, NARROW, STAMP, VAL, lru_way, sa_put, sa_touch, set_find, unsigned
from .tlb import tlb_fill
from .walk import VA_MASK, translate

DECLINED = -1  # fast_miss did not take the access, and changed nothing: the general path takes it
SETTLED = 1024  # fast misses in one generation after which a stale order word is worth rebuilding (l2_victim)
NO_GEOMETRY = (-1, -1, -1, -1, -1, -1)


@routine
def miss_geometry(geom, st):
    """What the fast path needs of the TLBs' geometry, read once a kernel call: (L1 base, L1 set mask, L1 ways,
    L2 base, L2 set mask, L2 ways), or NO_GEOMETRY when the path does not apply to this machine."""
    if st[ST_FAST_MISS] == 0 or st[ST_CACHE_ON] != 0:
        return NO_GEOMETRY
    for s in (S_L1_4K, S_L2):
        if geom[s, 1] == 0 or geom[s, 3] < 0:  # absent, or a number of sets that is not a power of two
            return NO_GEOMETRY
    return geom[S_L1_4K, 0], geom[S_L1_4K, 3], geom[S_L1_4K, 2], geom[S_L2, 0], geom[S_L2, 3], geom[S_L2, 2]


@routine
def l2_order(lru, l2_set, c, first, ways, gen):
    """The L2 set's order word (lru_order.py), rebuilt from its stamps unless it was made in this generation.

    `lru` holds a word a set, then the generation each was made in, then the last generation used. A new
    generation starts at each kernel call and after the general path or the fault path ran, either of which
    may have changed the stamps: the words are a cache that lives within one kernel call, never saved."""
    sets = (lru.shape[0] - 1) >> 1
    if lru[unsigned(sets + l2_set)] != gen:
        lru[unsigned(l2_set)] = order_of_stamps(c[first + STAMP * ways: first + (STAMP + 1) * ways])
        lru[unsigned(sets + l2_set)] = gen
    return lru[unsigned(l2_set)]


@routine
def l2_touch(lru, l2_set, first, ways, slot, gen):
    """Keep the order word of an L2 set whose way at `slot` has just become the most recent; a stale one stays
    stale (the stamps say the same, and l2_order rebuilds it only when a fill needs it)."""
    sets = (lru.shape[0] - 1) >> 1
    if ways <= ORDER_WAYS and lru[unsigned(sets + l2_set)] == gen:
        lru[unsigned(l2_set)] = order_to_top(lru[unsigned(l2_set)], slot - first, ways)


@routine
def l2_victim(lru, l2_set, c, first, ways, gen, settled):
    """The L2 slot a fill takes: the order word's oldest way, which then counts as the most recent; or the
    stamps' oldest in a set too wide for a word, or when the word is stale and the generation young (`settled`
    false: fast_miss's caller says). Rebuilding a word takes a dozen scans of the set: it pays only when many
    fills follow in the same generation, not where a fault handled between every two accesses starts one."""
    if ways > ORDER_WAYS or (not settled and lru[unsigned(((lru.shape[0] - 1) >> 1) + l2_set)] != gen):
        return lru_way(c, first, ways, True)
    order = l2_order(lru, l2_set, c, first, ways, gen)
    way = order & 15
    lru[unsigned(l2_set)] = order_to_top(order, way, ways)
    return first + way


@routine
def l1_probe_4k(linear, mg, geom, c, st):
    """tlb.l1_probe while only 4 KiB pages are in the TLBs: the 4 KiB L1 alone. Returns the slot or -1."""
    l1_base, l1_mask, l1_ways = mg[0], mg[1], mg[2]
    if st[ST_SIZES] == 0:
        return -1
    vpn = linear >> 12
    slot = set_find(c, l1_base + (vpn & l1_mask) * (5 * l1_ways), l1_ways, vpn * 4, st[ST_ASID], l1_ways > NARROW)
    if slot >= 0:
        sa_touch(geom, c, st, S_L1_4K, slot)
    return slot


@routine
def fast_miss(va, write, mg, g_tables, g_rows, h_tables, h_rows, geom, c, st, cost, cnt, ev, lru, gen, settled):
    """An access that missed the L1, while only 4 KiB pages are in the TLBs (st[ST_SIZES] <= 1).

    Returns (code, first-dimension refs, nested refs, fault addr, fault level, fault present, fault row), as
    `access` would go on from here: STOP_DONE with no references for an L2 hit, and with the walk's for a walk,
    the TLBs filled either way; the fault code of a walk that faulted, before the fault's bookkeeping
    (kernel.fault); or DECLINED.
    """
    l1_base, l1_mask, l1_ways, l2_base, l2_mask, l2_ways = mg
    linear = va & VA_MASK
    vpn = linear >> 12
    key = vpn * 4  # a 4 KiB entry's key: vpn and size code 0 (tlb.probe)
    asid = st[ST_ASID]
    l2_set = vpn & l2_mask
    l2_first = l2_base + l2_set * (5 * l2_ways)
    l1_first = l1_base + (vpn & l1_mask) * (5 * l1_ways)
    slot = set_find(c, l2_first, l2_ways, key, asid, True) if st[ST_SIZES] else -1
    if slot >= 0:
        flags = c[unsigned(slot + FLAGS * l2_ways)]
        if write and (flags & (TF_WRITABLE | TF_DIRTY)) != (TF_WRITABLE | TF_DIRTY):
            return DECLINED, 0, 0, 0, 0, 0, 0  # the walker must set D (an assist): the general path's case
        sa_touch(geom, c, st, S_L2, slot)
        l2_touch(lru, l2_set, l2_first, l2_ways, slot, gen)
        sa_put(c, st, lru_way(c, l1_first, l1_ways, True), l1_ways, key, asid, c[unsigned(slot + VAL * l2_ways)], flags)
        return STOP_DONE, 0, 0, 0, 0, 0, 0
    code, frame, size, flags, r1, r2, faddr, flevel, fpresent, frow = translate(
        va, write, g_tables, g_rows, h_tables, h_rows, geom, c, st, cost, cnt, ev, True)
    if code == STOP_DONE:
        if size == 0:
            victim = l2_victim(lru, l2_set, c, l2_first, l2_ways, gen, settled)
            sa_put(c, st, victim, l2_ways, key, asid, frame, flags)
            sa_put(c, st, lru_way(c, l1_first, l1_ways, True), l1_ways, key, asid, frame, flags)
            st[ST_SIZES] |= 1
        else:  # a large page: the general fill, which sets its size in st[ST_SIZES] (the caller starts a generation)
            tlb_fill(va, frame, size, flags, True, False, geom, c, st, ev)
    return code, r1, r2, faddr, flevel, fpresent, frow
