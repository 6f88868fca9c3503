"""Page walks, compiled: the one-dimensional walk and the two-dimensional nested walk.

What the page walker does on a TLB miss, over tables held in numpy arrays:

* ``walk_1d`` walks one radix table (native paging, or the shadow table under
  shadow paging): up to n references, fewer when a paging-structure cache
  (PWC) holds an upper-level entry (Intel SDM Vol. 3A §4.10.3: the walk starts
  at the deepest cached level; entries are cached only when P=1, PS=0, A=1).
* ``walk_2d`` is AMD RVI / Intel EPT: every guest-physical address the guest
  walk needs (each guest table page, then the data page) is translated by a
  nested walk of the gPA->hPA table, unless the nested TLB holds it; cold and
  uncached that is n*m + n + m references (Bhargava et al., ASPLOS 2008,
  Fig. 1(b); notes §2.1-2.2), 24 for 4x4.

Each reference is served by the data-cache model (L1D, L2, L3, DRAM) or a flat
latency. The walker sets A on every entry it uses and D on the leaf of a write,
as hardware does. Walks return a status tuple instead of raising, so the
kernel can hand a fault back to the software (guest OS or hypervisor).
"""

from __future__ import annotations

from .build import RECORD_EVENTS, WALK_1D, WALK_2D
from .counters import (
    K_CYC_WALK,
    K_NTLB_HITS,
    K_NTLB_MISSES,
    K_NWC_HITS,
    K_PWC_HITS,
    K_REFS_L1D,
)
from .entry import ADDR_MASK, NX, PS, RW, US, A, D, G, P
from .layout import (
    C_FLAT,
    C_L1D,
    C_NTLB,
    C_PWC,
    DIM_GUEST,
    DIM_NESTED,
    DIM_SHADOW,
    EV_REF,
    EV_SKIP,
    MAX_EVENTS,
    MODE_NATIVE,
    MODE_NESTED,
    S_CACHE_L1D,
    S_NTLB,
    S_NWC,
    S_PWC,
    SERVED_DRAM,
    SERVED_MEM,
    ST_ASID,
    ST_CACHE_ON,
    ST_EV_N,
    ST_EV_ON,
    ST_G_BASE,
    ST_GLEVELS,
    ST_H_BASE,
    ST_HLEVELS,
    ST_HOST_SIZE,
    ST_MODE,
    ST_NROOT,
    ST_ROOT,
    STOP_BUILD,
    STOP_DONE,
    STOP_GUEST_FAULT,
    STOP_NPF,
    STOP_SHADOW_FAULT,
    TF_DIRTY,
    TF_GLOBAL,
    TF_NX,
    TF_PAGE_SHIFT,
    TF_USER,
    TF_WRITABLE,
)
from .routine import routine
from .setassoc import (
    line_fill,
    line_find,
    sa_fill,
    sa_find,
    sa_flags,
    sa_touch,
    sa_val,
    unsigned,
)

VA_MASK = (1 << 57) - 1

# walk status (0 = translated); the kernel maps a fault to the mode's stop code
WALK_OK = 0
WALK_FAULT = 1  # first-dimension entry absent or too weak
WALK_NPF = 2  # nested entry absent: guest-physical page not backed


@routine
def emit(ev, st, kind, a, b, c, d, e, f):
    """Record one event when the step path asked for them. The batch kernels are built without it
    (build.RECORD_EVENTS: the branch is pruned, and LLVM inlines the empty routine away)."""
    if RECORD_EVENTS:
        if st[ST_EV_ON] != 0:
            n = st[ST_EV_N]
            if n < MAX_EVENTS:
                ev[n, 0] = kind
                ev[n, 1] = a
                ev[n, 2] = b
                ev[n, 3] = c
                ev[n, 4] = d
                ev[n, 5] = e
                ev[n, 6] = f
            st[ST_EV_N] = n + 1


@routine
def cache_access(pa, geom, c, st, cost):
    """One access to physical address pa through the data caches; returns (where served, cycles).

    The line is filled into every level that missed (an inclusive-style fill).
    """
    line = pa >> 6
    served = SERVED_DRAM
    for lvl in range(3):
        slot = line_find(geom, c, S_CACHE_L1D + lvl, line)
        if slot >= 0:
            sa_touch(geom, c, st, S_CACHE_L1D + lvl, slot)
            served = lvl
            break
    for lvl in range(served):  # fill the levels that missed
        line_fill(geom, c, st, S_CACHE_L1D + lvl, line)
    return served, cost[C_L1D + served]


@routine
def reference(pa, geom, c, st, cost, cnt):
    """Charge one walk memory reference; returns where it was served (SERVED_*)."""
    if st[ST_CACHE_ON] == 0:
        cnt[K_CYC_WALK] += cost[C_FLAT]
        cnt[K_REFS_L1D + SERVED_MEM] += 1
        return SERVED_MEM
    served, cycles = cache_access(pa, geom, c, st, cost)
    cnt[K_CYC_WALK] += cycles
    cnt[K_REFS_L1D + served] += 1
    return served


@routine
def leaf_flags(rights, entry, size, page):
    """TLB flags for a leaf: entry size, accumulated W/U, D, G, NX, and the size of the page it came from."""
    f = size | (page << TF_PAGE_SHIFT)
    if rights & RW:
        f |= TF_WRITABLE
    if rights & US:
        f |= TF_USER
    if entry & D:
        f |= TF_DIRTY
    if entry & G:
        f |= TF_GLOBAL
    if entry & NX:
        f |= TF_NX
    return f


@routine
def skip_cached_levels(addr, levels, asid, first, dim, row, geom, c, st, cost, cnt, ev, hits, scan):
    """Look the walk caches up, deepest level first (Intel SDM Vol. 3A §4.10.3.2).

    Structure ``first + L - 2`` caches level-L entries keyed by the address bits
    above level L-1. Returns (next table frame or -1, rights so far, level to read next).
    `scan`: each set by setassoc.set_find's vector compare (fast_miss.py), not way by way.
    """
    for lvl in range(2, levels + 1):
        s = first + lvl - 2
        key = addr >> (12 + 9 * (lvl - 1))
        slot = sa_find(geom, c, s, key, key, asid, scan)
        if slot >= 0:
            sa_touch(geom, c, st, s, slot)
            cnt[hits] += 1
            cnt[K_CYC_WALK] += cost[C_PWC]
            for skipped in range(levels, lvl - 1, -1):
                if dim == DIM_NESTED:  # a nested row's cells are its levels
                    emit(ev, st, EV_SKIP, dim, row, skipped, s, 0, 0)
                else:
                    emit(ev, st, EV_SKIP, dim, skipped, 0, s, 0, 0)
            return sa_val(geom, c, s, slot), sa_flags(geom, c, s, slot), lvl - 1
    return -1, RW | US, levels


@routine
def read_entry(addr, level, table, tables, rows, base, dim, erow, ecol, geom, c, st, cost, cnt, ev):
    """One reference of a walk whose tables live where they are read: charge it, read the entry,
    record it as grid cell (erow, ecol). Returns (entry, table row, index)."""
    idx = (addr >> (12 + 9 * (level - 1))) & 511
    pa = (table << 12) + idx * 8
    served = reference(pa, geom, c, st, cost, cnt)
    trow = rows[unsigned(table - base)]
    e = tables[unsigned(trow), unsigned(idx)]
    emit(ev, st, EV_REF, dim, erow, ecol, pa, served, e)
    return e, trow, idx


@routine
def mark_used(tables, trow, idx, e, leaf, write):
    """The walker sets A on every entry it uses and D on the leaf of a write; returns the entry now."""
    ne = e | A
    if leaf and write:
        ne |= D
    if ne != e:
        tables[unsigned(trow), unsigned(idx)] = ne
    return ne


@routine
def walk_1d(va, write, root, levels, asid, dim, tables, rows, base,
            geom, c, st, cost, cnt, ev, scan):
    """Walk one radix table from `root` for va.

    Returns (status, page frame, size code, TLB flags, refs, fault level, fault present).
    """
    va = va & VA_MASK
    table, rights, level = skip_cached_levels(va, levels, asid, S_PWC, dim, 0, geom, c, st, cost, cnt, ev, K_PWC_HITS,
                                                 scan)
    if table < 0:
        table = root
    refs = 0
    while True:
        e, row, idx = read_entry(va, level, table, tables, rows, base, dim, level, 0, geom, c, st, cost, cnt, ev)
        refs += 1
        if (e & P) == 0:
            return WALK_FAULT, 0, 0, 0, refs, level, 0
        rights &= e
        if write and (rights & RW) == 0:
            return WALK_FAULT, 0, 0, 0, refs, level, 1
        leaf = level == 1 or ((e & PS) != 0 and level <= 3)
        ne = mark_used(tables, row, idx, e, leaf, write)
        nxt = (e & ADDR_MASK) >> 12
        if leaf:
            size = level - 1
            return WALK_OK, nxt, size, leaf_flags(rights, ne, size, size), refs, level, 1
        if level >= 2:
            key = va >> (12 + 9 * (level - 1))
            sa_fill(geom, c, st, S_PWC + level - 2, key, key, asid, nxt, rights, False)
        table = nxt
        level -= 1


@routine
def nested_translate(gfn, row, write, h_tables, h_rows, geom, c, st, cost, cnt, ev, scan):
    """gPA frame -> hPA frame for row `row` of a 2D walk (guest level, 0 = the data page).

    Returns (status, host frame, refs, fault level). A nested-TLB hit skips the
    whole nested walk; otherwise the nested walk cache may skip its upper levels.
    `scan`: as skip_cached_levels', for the nested TLB's set too.
    """
    hsize = st[ST_HOST_SIZE]
    hshift = 9 * hsize
    key = gfn >> hshift
    slot = sa_find(geom, c, S_NTLB, key, key, 0, scan)
    if slot >= 0:
        sa_touch(geom, c, st, S_NTLB, slot)
        cnt[K_NTLB_HITS] += 1
        cnt[K_CYC_WALK] += cost[C_NTLB]
        emit(ev, st, EV_SKIP, DIM_NESTED, row, 0, S_NTLB, 0, 0)
        return WALK_OK, sa_val(geom, c, S_NTLB, slot) + (gfn & ((1 << hshift) - 1)), 0, 0
    cnt[K_NTLB_MISSES] += 1
    levels = st[ST_HLEVELS]
    base = st[ST_H_BASE]
    gpa = gfn << 12
    table, _, level = skip_cached_levels(gpa, levels, 0, S_NWC, DIM_NESTED, row, geom, c, st, cost, cnt, ev, K_NWC_HITS,
                                        scan)
    if table < 0:
        table = st[ST_NROOT]
    refs = 0
    while True:
        e, trow, idx = read_entry(gpa, level, table, h_tables, h_rows, base, DIM_NESTED, row, level,
                                  geom, c, st, cost, cnt, ev)
        refs += 1
        if (e & P) == 0:
            return WALK_NPF, 0, refs, level
        leaf = level == 1 or ((e & PS) != 0 and level <= 3)
        mark_used(h_tables, trow, idx, e, leaf, write)
        nxt = (e & ADDR_MASK) >> 12
        if leaf:
            page = nxt
            sa_fill(geom, c, st, S_NTLB, key, key, 0, page, 0, False)
            return WALK_OK, page + (gfn & ((1 << (9 * (level - 1))) - 1)), refs, 0
        if level >= 2:
            nkey = gpa >> (12 + 9 * (level - 1))
            sa_fill(geom, c, st, S_NWC + level - 2, nkey, nkey, 0, nxt, 0, False)
        table = nxt
        level -= 1


@routine
def walk_2d(va, write, groot, glevels, asid, g_tables, g_rows, h_tables, h_rows,
            geom, c, st, cost, cnt, ev, scan):
    """The nested (2D) walk of gVA va from guest CR3 frame `groot`.

    Returns (status, host frame of the TLB page, TLB size code, TLB flags,
    guest refs, nested refs, fault addr, fault level, fault present, fault row).
    The TLB page is the smaller of the guest and host pages (splintering).
    Each loop turn is one row of the walk grid: translate a gPA (the next guest
    table page, or finally the data page), then read the guest entry.
    """
    va = va & VA_MASK
    gbase = st[ST_G_BASE]
    gfn, rights, level = skip_cached_levels(va, glevels, asid, S_PWC, DIM_GUEST, 0, geom, c, st, cost, cnt, ev,
                                            K_PWC_HITS, scan)
    if gfn < 0:
        gfn = groot  # the guest-physical frame this row translates
    grefs = 0
    nrefs = 0
    gsize = -1  # set once the guest leaf is read; the next row is the data page
    leaf_entry = 0
    while True:
        row = level if gsize < 0 else 0
        status, hframe, r, flevel = nested_translate(
            gfn, row, write and gsize >= 0, h_tables, h_rows, geom, c, st, cost, cnt, ev, scan)
        nrefs += r
        if status != WALK_OK:
            return WALK_NPF, 0, 0, 0, grefs, nrefs, gfn << 12, flevel, 0, row
        if gsize >= 0:
            tsize = min(gsize, st[ST_HOST_SIZE])
            tframe = hframe & ~((1 << (9 * tsize)) - 1)
            return WALK_OK, tframe, tsize, leaf_flags(rights, leaf_entry, tsize, gsize), grefs, nrefs, 0, 0, 0, 0
        idx = (va >> (12 + 9 * (level - 1))) & 511
        pa = (hframe << 12) + idx * 8
        served = reference(pa, geom, c, st, cost, cnt)
        grefs += 1
        trow = g_rows[unsigned(gfn - gbase)]
        e = g_tables[unsigned(trow), unsigned(idx)]
        emit(ev, st, EV_REF, DIM_GUEST, level, 0, pa, served, e)
        if (e & P) == 0:
            return WALK_FAULT, 0, 0, 0, grefs, nrefs, va, level, 0, level
        rights &= e
        if write and (rights & RW) == 0:
            return WALK_FAULT, 0, 0, 0, grefs, nrefs, va, level, 1, level
        leaf = level == 1 or ((e & PS) != 0 and level <= 3)
        ne = mark_used(g_tables, trow, idx, e, leaf, write)
        nxt = (e & ADDR_MASK) >> 12
        if leaf:
            gsize = level - 1
            leaf_entry = ne
            gfn = nxt + ((va >> 12) & ((1 << (9 * gsize)) - 1))  # the 4 KiB gPA frame of va
        else:
            key = va >> (12 + 9 * (level - 1))
            sa_fill(geom, c, st, S_PWC + level - 2, key, key, asid, nxt, rights, False)
            gfn = nxt
            level -= 1


@routine
def fault_1d(st):
    """The stop of a 1D walk that faulted: a guest page fault natively, a shadow fault under shadow paging."""
    return STOP_GUEST_FAULT if st[ST_MODE] == MODE_NATIVE else STOP_SHADOW_FAULT


@routine
def translate(va, write, g_tables, g_rows, h_tables, h_rows, geom, c, st, cost, cnt, ev, scan):
    """Walk for va in the current mode: kernel.access's walk, and the short miss path's (fast_miss.py, with
    `scan`: see skip_cached_levels).

    Returns (stop code or STOP_DONE, frame, size, flags, first-dimension refs,
    nested refs, fault addr, fault level, fault present, fault row).
    """
    mode = st[ST_MODE]
    asid = st[ST_ASID]
    if WALK_2D:  # a build without it (build.py) holds the 1D walk alone, and the reverse
        if mode == MODE_NESTED:
            status, frame, size, flags, grefs, nrefs, faddr, flevel, fpresent, frow = walk_2d(
                va, write, st[ST_ROOT], st[ST_GLEVELS], asid, g_tables, g_rows, h_tables, h_rows,
                geom, c, st, cost, cnt, ev, scan)
            if status == WALK_OK:
                return STOP_DONE, frame, size, flags, grefs, nrefs, 0, 0, 0, 0
            code = STOP_NPF if status == WALK_NPF else STOP_GUEST_FAULT
            return code, 0, 0, 0, grefs, nrefs, faddr, flevel, fpresent, frow
    if WALK_1D:  # native walks the process table in guest memory; shadow walks the shadow table in host memory
        native = mode == MODE_NATIVE
        status, frame, size, flags, refs, flevel, fpresent = walk_1d(
            va, write, st[ST_ROOT], st[ST_GLEVELS], asid, DIM_GUEST if native else DIM_SHADOW,
            g_tables if native else h_tables, g_rows if native else h_rows,
            st[ST_G_BASE] if native else st[ST_H_BASE], geom, c, st, cost, cnt, ev, scan)
        if status == WALK_OK:
            return STOP_DONE, frame, size, flags, refs, 0, 0, 0, 0, 0
        return fault_1d(st), 0, 0, 0, refs, 0, va, flevel, fpresent, 0
    return STOP_BUILD, 0, 0, 0, 0, 0, 0, 0, 0, 0  # a mode this build has no walk for (hardware.py never asks)
