"""The compiled access loop: what the hardware does for each memory access.

``run_accesses`` runs ACCESS ops from ``start`` until the chunk ends or the
hardware must hand over to software — a guest-OS op, an access by another
process, a guest page fault, a nested page fault or a shadow fault — exactly
as a CPU traps to its OS or hypervisor. It returns the index of the op it
stopped at; ``stop`` says why. The access that faulted is retried after the
software has handled it, so every access completes exactly once and is
counted once, with the outcome of its completing attempt.

Batch and step runs use this same code. The step path switches on event
recording; the batch path also serves repeated L1 hits without probing, where
it can show that probing would change nothing (see ``run_accesses``). Tests
hold the two to the same counters.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .build import FAST_MISS, RECORD_EVENTS
from .counters import (
    K_ACCESSES,
    K_ASSIST_REFS,
    K_ASSIST_WALKS,
    K_CYC_BASE,
    K_CYC_TLB,
    K_DATA_L1D,
    K_FAULTED_REFS,
    K_FAULTED_WALKS,
    K_FETCHES,
    K_GUEST_REFS,
    K_L1_HITS,
    K_MISSES,
    K_NESTED_REFS,
    K_READS,
    K_WALK_REFS,
    K_WALKS,
    K_WRITES,
)
from .layout import (
    C_BASE,
    C_L1,
    C_L1D,
    C_L2,
    EV_ASSIST,
    EV_DONE,
    EV_FAULT,
    S_L1_4K,
    SI_ADDR,
    SI_CODE,
    SI_INDEX,
    SI_LEVEL,
    SI_PRESENT,
    SI_ROW,
    SI_WRITE,
    ST_DATA_CACHE,
    ST_EV_ON,
    ST_FAST_MISS,
    ST_MAX_WALK,
    ST_PID,
    ST_SIZES,
    STOP_DONE,
    STOP_OSOP,
    STOP_PID,
    TF_DIRTY,
    TF_SIZE_MASK,
    TF_WRITABLE,
)
from .fast_fault import fast_fault
from .fast_miss import DECLINED, NO_GEOMETRY, SETTLED, fast_miss, l1_probe_4k, miss_geometry
from .routine import routine
from .setassoc import sa_flags, sa_val, set_base, unsigned
from .tlb import l1_probe, tlb_fill, tlb_lookup
from .walk import VA_MASK, cache_access, emit, translate

ACCESS = 0
WRITE = 1
FETCH = 2
FAST_TRIES = 4  # fast-path faults one access may take before software must look (a shadow one takes two)


@routine
def access(va, write, l1_missed, g_tables, g_rows, h_tables, h_rows, geom, c, st, cost, cnt, ev, stop):
    """One access: TLB lookup (from the L2 when `l1_missed`: see tlb_lookup), a walk on a miss, fill.

    Returns STOP_DONE or a stop code.

    A write that hits a clean or read-only entry walks too (to set D, or to
    find the fault), but still counts as the TLB hit it was.
    """
    slot, level, s = tlb_lookup(va, l1_missed, geom, c, st, cost, cnt, ev)
    frame = 0
    size = 0
    walked = slot < 0
    if slot >= 0:
        flags = sa_flags(geom, c, s, slot)
        frame = sa_val(geom, c, s, slot)
        size = flags & TF_SIZE_MASK
        if write and (flags & (TF_WRITABLE | TF_DIRTY)) != (TF_WRITABLE | TF_DIRTY):
            emit(ev, st, EV_ASSIST, 0, 0, 0, 0, 0, 0)
            walked = True
    if walked:
        code, frame, size, flags, r1, r2, faddr, flevel, fpresent, frow = translate(
            va, write, g_tables, g_rows, h_tables, h_rows, geom, c, st, cost, cnt, ev, False)
        if code != STOP_DONE:
            return fault(code, faddr, flevel, write, fpresent, frow, r1 + r2, cnt, st, ev, stop)
        if slot >= 0:
            cnt[K_ASSIST_WALKS] += 1
            cnt[K_ASSIST_REFS] += r1 + r2
        else:
            count_miss(r1, r2, cnt, st)
            level = 2
    if level > 0 or walked:  # an L2 hit refills the L1; a walk (a miss, or an assist) fills both
        tlb_fill(va, frame, size, flags, walked, walked and slot >= 0, geom, c, st, ev)
    if level < 2:
        cnt[K_L1_HITS + level] += 1
    offset = (va & VA_MASK) & ((1 << (12 + 9 * size)) - 1)
    pa = (frame << 12) + offset
    emit(ev, st, EV_DONE, pa, size, level, 0, 0, 0)
    data_access(pa, geom, c, st, cost, cnt)
    return STOP_DONE


@routine
def count_miss(r1, r2, cnt, st):
    """A TLB miss and its completed walk of r1 first-dimension and r2 nested references."""
    cnt[K_MISSES] += 1
    cnt[K_WALKS] += 1
    cnt[K_WALK_REFS] += r1 + r2
    cnt[K_GUEST_REFS] += r1
    cnt[K_NESTED_REFS] += r2
    if r1 + r2 > st[ST_MAX_WALK]:
        st[ST_MAX_WALK] = r1 + r2


@routine
def data_access(pa, geom, c, st, cost, cnt):
    """The access itself, after translation: through the caches (competing with walks) or at a flat cost."""
    if st[ST_DATA_CACHE]:
        served, cycles = cache_access(pa, geom, c, st, cost)
        cnt[K_CYC_BASE] += cycles
        cnt[K_DATA_L1D + served] += 1
    else:
        cnt[K_CYC_BASE] += cost[C_BASE]


@routine
def fault(code, faddr, flevel, write, fpresent, frow, refs, cnt, st, ev, stop):
    cnt[K_FAULTED_WALKS] += 1
    cnt[K_FAULTED_REFS] += refs
    stop[SI_CODE] = code
    stop[SI_ADDR] = faddr
    stop[SI_LEVEL] = flevel
    stop[SI_WRITE] = 1 if write else 0
    stop[SI_PRESENT] = fpresent
    stop[SI_ROW] = frow
    emit(ev, st, EV_FAULT, code, faddr, flevel, 1 if write else 0, fpresent, frow)
    return code


@njit(nogil=True, cache=True, _nrt=False)
def run_accesses(ops, start, end, g_tables, g_rows, h_tables, h_rows, geom, c, lru, st, cost, cnt, ev, stop,
                 sw, vmas, pool, counts, backed, meta, gfn_pages):
    """Run ops[start:end] until the end or the first op software must handle; returns its index.

    `ops` is the op array itself (workloads.ops.OP_DTYPE records), read in place: splitting it
    into columns first would cost about as much as the accesses that hit the TLB. In batch runs a
    common fault is handled in compiled code and the access retried (fast_fault.py, which says what
    `sw`, `vmas`, `pool`, `counts`, `backed`, `meta` and `gfn_pages` hold).
    """
    i = start
    # Batch runs (events off) serve plain L1 hits here, with counts in locals until the return;
    # everything else, and every access of the step path, takes the full path of access().
    # Two recently hit L1 entries are remembered with what a hit needs of them (page, structure,
    # set, writable-and-dirty, frame, offset mask): an access to one of those pages hits that entry
    # again, and while the entry is still the most recent of its set, touching it would change no
    # LRU order, so even the probe is skipped. Hitting or filling any other entry of the same set
    # ends that; the full path, which may change entries, forgets both.
    fast = st[ST_EV_ON] == 0
    pid = st[ST_PID]  # constant during a call: kept in locals, as the counts are, so that the
    data_cache = st[ST_DATA_CACHE]  # fast path loads and stores nothing the compiler must
    access_cost = cost[C_BASE]  # assume another array write may have changed
    base_cycles = 0
    last_line = -1  # the line the last fast-path data access touched
    line_hits = 0
    page_a = -1
    s_a = 0
    set_a = -1
    wd_a = False
    frame_a = 0
    mask_a = 0
    page_b = -1
    s_b = 0
    set_b = -1
    wd_b = False
    frame_b = 0
    mask_b = 0
    l1_hits = 0
    n_write = 0
    n_fetch = 0
    tries = 0
    # L1 misses while only 4 KiB pages are in the TLBs, served by fast_miss.py (batch builds)
    mg = miss_geometry(geom, st) if FAST_MISS and fast else NO_GEOMETRY
    fast_misses = mg[0] >= 0
    gen = lru[lru.shape[0] - 1] + 1  # (fast_miss.l2_order)
    settle = SETTLED if st[ST_FAST_MISS] == 1 else 0  # (2: tests, order words from the first fill)
    young = settle  # fast misses to go before the generation is settled (fast_miss.l2_victim)
    while i < end:
        op = ops[unsigned(i)]
        if op["kind"] != ACCESS:
            stop[SI_CODE] = STOP_OSOP
            break
        if op["pid"] != pid:
            stop[SI_CODE] = STOP_PID
            break
        rw = op["rw"]
        va = np.int64(op["addr"])  # the same 64 bits, signed as the kernel's addresses are
        linear = va & VA_MASK  # what the TLB and the walk index; a fault reports va itself
        write = rw == WRITE
        hit = False
        l1_missed = False  # the L1 was probed for this access and missed: the full path starts at the L2
        if fast:
            page = linear >> 12
            if page == page_a:
                hit = True
            elif page == page_b:  # b becomes a, so that a is always the entry hit last
                hit = True
                page_a, s_a, set_a, wd_a, frame_a, mask_a, page_b, s_b, set_b, wd_b, frame_b, mask_b = (
                    page_b, s_b, set_b, wd_b, frame_b, mask_b, page_a, s_a, set_a, wd_a, frame_a, mask_a)
            else:
                if FAST_MISS and fast_misses and st[ST_SIZES] <= 1:  # the 4 KiB L1 alone can hold the page
                    slot, hs = l1_probe_4k(linear, mg, geom, c, st), S_L1_4K
                else:
                    slot, hs = l1_probe(linear, geom, c, st, ev)
                if slot >= 0:  # now the most recent of its set: remember it, and forget what it displaced
                    hit = True
                    size = hs - S_L1_4K
                    hset = set_base(geom, hs, linear >> (12 + 9 * size))
                    if hs != s_a or hset != set_a:  # else it displaced entry a, whose set b is not in
                        page_b, s_b, set_b, wd_b, frame_b, mask_b = page_a, s_a, set_a, wd_a, frame_a, mask_a
                    page_a = page
                    s_a = hs
                    set_a = hset
                    wd_a = (sa_flags(geom, c, hs, slot) & (TF_WRITABLE | TF_DIRTY)) == (TF_WRITABLE | TF_DIRTY)
                    frame_a = sa_val(geom, c, hs, slot)
                    mask_a = (1 << (12 + 9 * size)) - 1
                else:
                    l1_missed = True
            if hit and write and not wd_a:
                hit = False  # a write to a clean or read-only entry needs the walk: the full path
        if hit:
            l1_hits += 1
            if data_cache:
                line = ((frame_a << 12) + (linear & mask_a)) >> 6
                if line == last_line:  # still the most recent line of its L1D set: a hit that moves nothing
                    line_hits += 1
                else:
                    data_access(line << 6, geom, c, st, cost, cnt)
                    last_line = line
            else:
                base_cycles += access_cost
        else:
            code = DECLINED
            if FAST_MISS and fast_misses and l1_missed and st[ST_SIZES] <= 1:  # (a build without it compiles none)
                code, r1, r2, faddr, flevel, fpresent, frow = fast_miss(
                    va, write, mg, g_tables, g_rows, h_tables, h_rows, geom, c, st, cost, cnt, ev, lru, gen, young <= 0)
                if code != DECLINED:  # counted as access() counts it
                    young -= 1
                    cnt[K_CYC_TLB] += cost[C_L1] + cost[C_L2]
                    if code == STOP_DONE:
                        if r1 == 0:  # (a walk reads at least its leaf)
                            cnt[K_L1_HITS + 1] += 1
                        else:
                            count_miss(r1, r2, cnt, st)
                            if st[ST_SIZES] > 1:
                                gen += 1  # a large page went in by the general fill
                                young = settle
                        data_access(0, geom, c, st, cost, cnt)  # (no data-cache model here: the flat cost)
                    else:
                        code = fault(code, faddr, flevel, write, fpresent, frow, r1 + r2, cnt, st, ev, stop)
            if code == DECLINED:
                code = access(va, write, l1_missed, g_tables, g_rows, h_tables, h_rows, geom, c, st, cost, cnt, ev,
                              stop)
                gen += 1  # it may have used any set: fast_miss's order words are stale
                young = settle
            if code != STOP_DONE:
                # (the builds that record events serve the step path, whose faults go to Python: they leave it out)
                if not RECORD_EVENTS and fast and tries < FAST_TRIES and fast_fault(
                        code, stop[SI_ADDR], write, g_tables, g_rows, h_tables, h_rows, geom, c, st, cnt, sw, vmas,
                        pool, counts, backed, meta, gfn_pages):
                    tries += 1  # handled: the access is tried again, as after a return to software
                    gen += 1
                    young = settle
                    page_a = -1
                    page_b = -1
                    last_line = -1
                    continue
                break
            tries = 0
            page_a = -1
            page_b = -1
            last_line = -1
        n_write += write
        n_fetch += rw == FETCH
        i += 1
        if hit:
            # The accesses that follow and hit entry a the same way, served by a loop of their own: the loop
            # around it carries the miss path's state, which the compiler keeps on the stack, and a hit-heavy
            # stream paid for reloading it on every access. Anything else goes back to the path above.
            while i < end:
                op = ops[unsigned(i)]
                rw = op["rw"]
                linear = np.int64(op["addr"]) & VA_MASK
                if op["kind"] != ACCESS or op["pid"] != pid or linear >> 12 != page_a or (rw == WRITE and not wd_a):
                    break
                if data_cache:
                    if ((frame_a << 12) + (linear & mask_a)) >> 6 != last_line:
                        break
                    line_hits += 1
                else:
                    base_cycles += access_cost
                l1_hits += 1
                n_write += rw == WRITE
                n_fetch += rw == FETCH
                i += 1
    else:
        stop[SI_CODE] = STOP_DONE
    stop[SI_INDEX] = i
    lru[lru.shape[0] - 1] = gen
    cnt[K_CYC_BASE] += base_cycles + line_hits * cost[C_L1D]
    cnt[K_DATA_L1D] += line_hits
    cnt[K_CYC_TLB] += l1_hits * cost[C_L1]
    cnt[K_L1_HITS] += l1_hits
    cnt[K_ACCESSES] += i - start
    cnt[K_WRITES] += n_write
    cnt[K_FETCHES] += n_fetch
    cnt[K_READS] += i - start - n_write - n_fetch
    return i
