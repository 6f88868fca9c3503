"""A set-associative LRU structure held in one flat int64 array.

Every cache the hardware has — L1/L2 TLBs, paging-structure caches, the
nested TLB, the nested walk cache, the data caches — is one of these, so the
kernels share one lookup and one fill routine, and a machine's whole cache
state is one array ``c`` plus a geometry table
``geom[s] = (base, sets, ways, index mask or -1, fields)`` (sets = 0: absent).

Layout is set-major: each set is one contiguous block of ``fields * ways``
words — ``[keys | stamps | asids | values | flags]`` for TLBs and walk caches,
just ``[keys | stamps]`` for the data caches (``geom[s, 4]`` says which) — so
probing a set and updating its LRU state touches a few adjacent cache lines of
the host, not arrays scattered over megabytes. A slot is the index of its key;
field F of its way sits ``F * ways`` further on (KEY, STAMP, ... below). The
stamps follow the keys because a miss reads those two alone (the probe, then
the fill's choice of a victim): adjacent, they share the host's cache lines
and its adjacent-line prefetch. A key of -1 is an empty way.
The set is ``index mod sets``; the victim is an empty way, else the way with
the oldest stamp (true LRU). An empty way has key -1 and stamp 0; a filled one
has the clock value of its last use, always >= 1.
"""

from __future__ import annotations

import numba
import numpy as np

from .build import VECTOR_SCANS
from .layout import ST_CLOCK, TF_GLOBAL
from .routine import routine
from .simd import LANES, first_key_lane

KEY, STAMP, ASID, VAL, FLAGS = range(5)  # field order inside a set block: a data cache has the first two
# An index known to be >= 0 as an unsigned integer: numba then compiles no negative-index fix-up (a shift, an and
# and an add) into the load or store, and LLVM can vectorise a scan over it. Plain Python needs no such hint.
unsigned = int if numba.config.DISABLE_JIT else np.uint64
PADDING = LANES - 1  # words after the last set, which a compiled scan of its keys (simd.first_key_lane) reads
NARROW = 8  # ways up to which every build's scans stop at the match (wide_first_way)


@routine
def set_base(geom, s, index):
    """First word of index's set; index mod sets is a mask when sets is a power of two (a divide is ~40 cycles)."""
    mask = geom[unsigned(s), 3]
    block = geom[unsigned(s), 2] * geom[unsigned(s), 4]
    if mask >= 0:
        return geom[unsigned(s), 0] + (index & mask) * block
    return geom[unsigned(s), 0] + (index % geom[unsigned(s), 1]) * block


@routine
def sa_find(geom, c, s, index, key, asid, scan):
    """Slot holding (key, asid) in structure s, or -1. Global TLB entries match any PCID of their VPID.

    `scan`: the batch builds scan the set with wide_first_way (set_find). The TLB lookups ask for it in sets
    of more than NARROW ways, the short miss path in its L2 and walk caches: each place that may take that
    path costs compile time.
    """
    if geom[unsigned(s), 1] == 0:
        return -1
    return set_find(c, set_base(geom, s, index), geom[unsigned(s), 2], key, asid, scan)


@routine
def set_find(c, first, ways, key, asid, scan):
    """sa_find in the set at `first`. `scan`: find the key's first way with wide_first_way, without an early
    exit, before the tag check (fast_miss.py asks for it in narrow sets too); the builds without vector scans
    compile the loop alone (the answer is the same either way)."""
    start = first
    if VECTOR_SCANS and scan:
        way = wide_first_way(c, first, ways, key)
        if way == ways:
            return -1
        start = first + way  # the tag check below: past this way only for a key under another tag (rare)
    for slot in range(start, first + ways):
        if c[unsigned(slot)] == key:
            tag = c[unsigned(slot + ASID * ways)]
            if tag == asid or ((c[unsigned(slot + FLAGS * ways)] & TF_GLOBAL) != 0 and (tag >> 12) == (asid >> 12)):
                return slot
    return -1


@routine
def wide_first_way(c, first, ways, key):
    """The first of the `ways` words from c[first] that is `key`, or `ways`, for a wide set in the batch builds.

    A scan that stops at the match was the miss path's largest cost with the modern preset's 72-way
    L1 and 24-way L2, and a loop over the ways without an early exit compiled to a vectorised loop
    whose set-up cost as much again in a small set. This compares LANES keys at once (simd.py), a set
    of up to LANES ways in one compare. The general path's lookups take it in sets of more than
    NARROW ways, the short miss path in its L2 and walk caches of any size (set_find); every set in
    the step and interpreted builds is scanned way by way up to the match (as Python, the full scan
    is slower).
    """
    if ways <= LANES:
        return first_key_lane(c, first, ways, key)
    block = 0  # (a while loop: numba's range with a step divides to count its turns)
    while block < ways:
        lanes = min(LANES, ways - block)
        lane = first_key_lane(c, first + block, lanes, key)
        if lane < lanes:
            return block + lane
        block += LANES
    return ways


@routine
def sa_val(geom, c, s, slot):
    return c[unsigned(slot + VAL * geom[unsigned(s), 2])]


@routine
def sa_flags(geom, c, s, slot):
    return c[unsigned(slot + FLAGS * geom[unsigned(s), 2])]


@routine
def sa_set_flags(geom, c, s, slot, flags):
    c[unsigned(slot + FLAGS * geom[unsigned(s), 2])] = flags


@routine
def sa_touch(geom, c, st, s, slot):
    st[ST_CLOCK] += 1
    c[unsigned(slot + STAMP * geom[unsigned(s), 2])] = st[ST_CLOCK]


@routine
def line_find(geom, c, s, line):
    """Slot of a line in a two-field (key, stamp) data cache, or -1 (a line is in at most one way)."""
    ways = geom[unsigned(s), 2]
    first = set_base(geom, s, line)
    for slot in range(first, first + ways):
        if c[unsigned(slot)] == line:
            return slot
    return -1


@routine
def lru_way(c, first, ways, wide):
    """The slot to evict from the set at `first`: the lowest stamp, the first of equals.

    An empty way has stamp 0 and every filled one a clock value >= 1, so this is
    'the first empty way, else the least recently used', without a branch on the stamps.
    A narrow set is one pass carrying the oldest stamp and its way; a wide one in the batch
    builds is two reductions, the oldest stamp and then the first way holding it, which
    LLVM vectorises (one pass carrying both does not). See wide_first_way.
    """
    stamps = first + STAMP * ways
    if VECTOR_SCANS and wide and ways > NARROW:
        return first + wide_lru_way(c, stamps, ways)
    victim = 0
    oldest = c[unsigned(stamps)]
    for way in range(1, ways):
        stamp = c[unsigned(stamps + way)]
        older = stamp < oldest
        victim = way if older else victim
        oldest = stamp if older else oldest
    return first + victim


@routine
def wide_lru_way(c, stamps, ways):
    """lru_way's choice in a wide set whose stamps start at c[stamps]: the oldest stamp, then the first way holding it
    (two vector reductions)."""
    oldest = c[unsigned(stamps)]
    for way in range(1, ways):
        oldest = min(oldest, c[unsigned(stamps + way)])
    return wide_first_way(c, stamps, ways, oldest)


@routine
def line_fill(geom, c, st, s, line):
    """Fill a line into a two-field data cache: an empty way, else the LRU way."""
    ways = geom[unsigned(s), 2]
    first = set_base(geom, s, line)
    victim = lru_way(c, first, ways, False)
    c[unsigned(victim)] = line
    st[ST_CLOCK] += 1
    c[unsigned(victim + STAMP * ways)] = st[ST_CLOCK]


@routine
def sa_fill(geom, c, st, s, index, key, asid, val, flags, wide):
    """Fill (key, asid) -> (val, flags), known to be absent (it just missed), into the LRU way.

    Returns (slot, evicted key or -1). Every fill after a miss comes here: skipping the
    search for an entry that cannot be there is most of the cost of a fill.
    """
    if geom[unsigned(s), 1] == 0:
        return -1, -1
    ways = geom[unsigned(s), 2]
    first = set_base(geom, s, index)
    return sa_put(c, st, lru_way(c, first, ways, wide), ways, key, asid, val, flags)


@routine
def sa_insert(geom, c, st, s, index, key, asid, val, flags, wide):
    """Fill (key, asid) -> (val, flags) in structure s, overwriting the entry in place when it is
    already there (a TLB hit re-walked to set D); returns (slot, evicted key or -1)."""
    if geom[unsigned(s), 1] == 0:
        return -1, -1
    ways = geom[unsigned(s), 2]
    first = set_base(geom, s, index)
    present = -1
    for slot in range(first, first + ways):
        if c[unsigned(slot)] == key and c[unsigned(slot + ASID * ways)] == asid:
            present = slot
            break
    victim = present if present >= 0 else lru_way(c, first, ways, wide)
    return sa_put(c, st, victim, ways, key, asid, val, flags)


@routine
def sa_put(c, st, slot, ways, key, asid, val, flags):
    """Write an entry into `slot` as the most recent of its set; returns (slot, evicted key or -1)."""
    evicted = c[unsigned(slot)]
    if evicted == key and c[unsigned(slot + ASID * ways)] == asid:
        evicted = -1
    c[unsigned(slot)] = key
    c[unsigned(slot + ASID * ways)] = asid
    c[unsigned(slot + VAL * ways)] = val
    c[unsigned(slot + FLAGS * ways)] = flags
    st[ST_CLOCK] += 1
    c[unsigned(slot + STAMP * ways)] = st[ST_CLOCK]
    return slot, evicted


def make_arrays(geometry: list[tuple[int, int]], fields_of: list[int] | None = None):
    """(geom, c) for structures given as (sets, ways) each, with 5 fields a slot unless fields_of says 2."""
    n = len(geometry)
    geom = np.zeros((n, 5), dtype=np.int64)
    base = 0
    for s, (sets, ways) in enumerate(geometry):
        pow2 = sets > 0 and sets & (sets - 1) == 0
        nf = fields_of[s] if fields_of else 5
        geom[s] = (base, sets, ways if sets else 0, sets - 1 if pow2 else -1, nf)
        base += sets * ways * nf
    c = np.zeros(cache_length(geom), dtype=np.int64)
    for s in range(n):
        fields(geom, c, s)[KEY] = -1
    return geom, c


def cache_length(geom) -> int:
    """Words of a cache array of this geometry: its structures, and the padding after them."""
    return int((geom[:, 0] + geom[:, 1] * geom[:, 2] * geom[:, 4]).max(initial=0)) + PADDING


def fields(geom, c, s: int) -> np.ndarray:
    """Structure s as a (fields, sets, ways) view: fields(...)[KEY][set, way] and so on (for Python-side work)."""
    base, sets, ways, _, nf = (int(x) for x in geom[s])
    block = c[base : base + sets * ways * nf].reshape(sets, nf, ways)
    return block.transpose(1, 0, 2)


def slots(geom, s: int) -> np.ndarray:
    """The slots of structure s (the index of each way's key in c) as a (sets, ways) array."""
    base, sets, ways, _, nf = (int(x) for x in geom[s])
    return base + np.arange(sets, dtype=np.int64)[:, None] * (nf * ways) + np.arange(ways, dtype=np.int64)[None, :]


@routine  # numpy indices from Python, one way from compiled code (fast_fault.invlpg_4k)
def empty(c, keys, stamps) -> None:
    """Empty the ways whose key and stamp are at these indices of c; stamp 0 makes each the first of its set
    to fill."""
    c[keys] = -1
    c[stamps] = 0


def drop(geom, c, s: int, gone: np.ndarray) -> None:
    """Empty the ways of structure s where `gone` (sets, ways) is true."""
    keys = slots(geom, s)[gone]
    empty(c, keys, keys + STAMP * int(geom[s, 2]))


def lru_ages(geom, c, s: int) -> np.ndarray:
    """(sets, ways): how many valid ways of the same set were used more recently than each way."""
    view = fields(geom, c, s)
    stamp = np.where(view[KEY] != -1, view[STAMP], -1)
    return (stamp[:, None, :] > stamp[:, :, None]).sum(axis=2)


def position(geom, s: int, offset: int) -> tuple[int, int]:
    """(set, way) of a slot given as its offset from the structure's base (as events carry it)."""
    ways, nf = int(geom[s, 2]), int(geom[s, 4])
    if offset < 0 or ways == 0:
        return -1, -1
    block = offset // (nf * ways)
    return block, offset - block * nf * ways
