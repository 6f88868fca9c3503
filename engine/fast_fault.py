"""The common page faults, handled without leaving compiled code, and the rules they share with the handlers.

KVM keeps ``fast_page_fault()`` beside its full fault handler, for the faults
it can fix without taking the MMU lock. This module is the model's version:
the batch kernel (``kernel.run_accesses``) hands a fault here first, and only a
fault that needs a decision goes back to Python (``machine.py``): a fault that
needs a page table, a large page, a frame from a fresh 2 MiB chunk, a
write-protected guest table, a shadow page to make, link or sync, or an exit
of its own inside the guest's handling. These need none of that:

* **a demand fault on anonymous memory** whose page table exists: a read maps
  the shared zero page, a write a fresh, cleared 4 KiB page mapped dirty
  (``do_anonymous_page``), natively and under nested paging;
* **a write to a copy-on-write 4 KiB page** where the guest maps only 4 KiB
  pages: the page is copied if it is shared or the zero page (``wp_page_copy``,
  which flushes the old translation: an INVLPG), else made writable in place
  (``wp_page_reuse``). Natively and under nested paging; under shadow paging
  where the shadow path exists and the guest's table is shadowed by one unsync
  page, so that the fault is injected, the guest's store only makes that
  page's entry stale, and its INVLPG exits and syncs the entry
  (``FNAME(invlpg)``/``FNAME(sync_spte)``, flushing the VPID if that dropped
  the entry);
* under shadow paging, **a demand fault injected**: the hypervisor's software
  walk finds the guest entry absent, reflects the #PF into the guest
  (``kvm_inject_page_fault``) and the guest maps the page as above; its store
  to its table is a plain one (the table is not shadowed, or only by an unsync
  page, which then notes the entry as stale);
* under shadow paging, **a hidden fault** whose guest entry is present, a
  4 KiB leaf, and whose shadow path exists with the right roles: the
  hypervisor fills the leaf SPTE (``FNAME(fetch)``) and prefetches its
  neighbours (``FNAME(pte_prefetch)``);
* under nested paging, **a nested page fault** whose nested page table
  exists: the hypervisor backs the host page and maps it
  (``kvm_tdp_page_fault``).

One source of truth: every rule the fast path applies is a routine here, and
the Python handlers (``guest_os.py``, ``page_refs.py``, ``physmem.py``,
``mmu.py``, ``modes.py``, ``shadow.py``, ``host.py``) call the same routines
for the same work (called from Python, a routine is plain Python). The fast
path adds only the test of whether a fault is one of these; tests run every
stream with it on and off and compare every counter and every table entry. It
runs only with events off (the batch path): a stepped fault goes to Python,
whose notes the step path shows.

State the fast path touches lives in arrays the machine owns: ``sw`` (layout
``SW_*``: inputs set before each kernel call, the shadow exit count, and the
software events it noted), the current process's VMAs (start, end, writable
rows), the guest memory's free 4 KiB frames (``POOL_*``), the guest's page
references (``REFS_BLOCK``), the host's backed-page bytes, the shadow pages'
rows (``M_*``) and the number of shadow pages of each guest frame.
"""

from __future__ import annotations

from .build import WALK_1D, WALK_2D
from .counters import INDEX
from .entry import ADDR_MASK, NX, PS, RW, US, A, D, G, P
from .layout import (
    M_ACCESS,
    M_DIRECT,
    M_FLOOD,
    M_GFN,
    M_LEVEL,
    M_SHADOW,
    M_STALE,
    M_UNSYNC,
    MODE_SHADOW,
    POOL_FIRST,
    POOL_IN_USE,
    POOL_N,
    REFS_BLOCK,
    S_L1_4K,
    S_L2,
    S_PWC,
    ST_ASID,
    ST_G_BASE,
    ST_GLEVELS,
    ST_H_BASE,
    ST_HLEVELS,
    ST_HOST_SIZE,
    ST_MODE,
    ST_NROOT,
    ST_ROOT,
    STOP_GUEST_FAULT,
    STOP_NPF,
    STOP_SHADOW_FAULT,
    SW_COST_CLEAR,
    SW_COST_COPY,
    SW_COST_FILL,
    SW_COST_INJECT,
    SW_COST_INVLPG,
    SW_COST_NPF,
    SW_COST_PF,
    SW_COST_PTE,
    SW_FAST,
    SW_FLUSHED_SEQ,
    SW_GCR3,
    SW_HOST_ALLOC,
    SW_HOST_SIZE,
    SW_MAX_PAGE,
    SW_NOTED_EXIT,
    SW_NOTED_FLUSH,
    SW_NOTED_GUEST_FAULT,
    SW_NOTED_SHADOW_SYNC,
    SW_PLACE_MASK,
    SW_PREFETCH,
    SW_SEQ,
    SW_UNSYNC,
    SW_VM_EXIT,
    SW_ZERO_FRAME,
    TF_GLOBAL,
)
from .routine import fault_routine, routine
from .setassoc import ASID, FLAGS, STAMP, empty
from .walk import VA_MASK

COW = 1 << 9  # an available-to-software bit: the page is shared copy-on-write (guest_os.COW)
MIX = 0x9E3779B1  # odd: multiplication by it is a bijection modulo 2^k (host.Placement)
CLEAN_SHIFT = 5  # D (bit 6) shifted down to RW (bit 1): a guest entry's D bit is its shadow leaf's RW
assert D >> CLEAN_SHIFT == RW

EXITS = INDEX["exits"]
CYC_EXIT = INDEX["cyc_exit"]
CYC_HYPERVISOR = INDEX["cyc_hypervisor"]
CYC_GUEST_OS = INDEX["cyc_guest_os"]
EXIT_GUEST_PF_INJECT = INDEX["exit_guest_pf_inject"]
EXIT_SHADOW_FAULT = INDEX["exit_shadow_fault"]
EXIT_NPF = INDEX["exit_npf"]
EXIT_INVLPG = INDEX["exit_invlpg"]
INVLPG = INDEX["invlpg"]
TLB_FLUSH = INDEX["tlb_flush"]
PF_TAKEN = INDEX["pf_taken"]
PF_FIXED = INDEX["pf_fixed"]
PF_GUEST = INDEX["pf_guest"]
HV_WALK_REFS = INDEX["hv_walk_refs"]
HOST_PAGE_ALLOCS = INDEX["host_page_allocs"]
MMU_UNSYNC = INDEX["mmu_unsync"]
GUEST_PF = INDEX["guest_pf"]
PTE_WRITES = INDEX["pte_writes"]
ZERO_PAGE_MAPS = INDEX["zero_page_maps"]
COW_FAULTS = INDEX["cow_faults"]
GUEST_INVLPGS = INDEX["guest_invlpgs"]


# --- the host --------------------------------------------------------------------------------------------
@fault_routine
def host_frame(gfn, unit_bits, mask):
    """Where guest frame gfn lives in host memory: its host page scattered by a fixed bijection (host.Placement)."""
    unit = gfn >> unit_bits
    page = ((unit * MIX) ^ (mask >> 1)) & mask
    return (page << unit_bits) | (gfn & ((1 << unit_bits) - 1))


@fault_routine
def back_host_page(backed, unit, cnt, cycles):
    """Back host page `unit` if it is not yet (kvm_faultin_pfn, in whichever fault first needs it): counted
    (host_page_allocs) and charged `cycles` of hypervisor time. Returns whether it was newly backed."""
    if backed[unit]:
        return False
    backed[unit] = 1
    cnt[HOST_PAGE_ALLOCS] += 1
    cnt[CYC_HYPERVISOR] += cycles
    return True


# --- accounting ------------------------------------------------------------------------------------------
@fault_routine
def count_exit(cnt, reason, trip, handler):
    """A VM exit for `reason` (a counter slot, exit_*): the round trip plus the hypervisor's handler."""
    cnt[EXITS] += 1
    cnt[reason] += 1
    cnt[CYC_EXIT] += trip
    cnt[CYC_HYPERVISOR] += handler


@fault_routine
def shadow_exit(cnt, sw, reason, handler):
    """A VM exit under shadow paging (shadow.Shadow._exit): counted, one more exit for KVM's flush-once rule
    (SW_SEQ), and the mmu_unsync gauge rewritten from its live value, as whenever the hypervisor runs."""
    sw[SW_SEQ] += 1
    count_exit(cnt, reason, sw[SW_VM_EXIT], handler)
    cnt[MMU_UNSYNC] = sw[SW_UNSYNC]


@fault_routine
def count_guest_fault(cnt, cost):
    """The guest kernel takes a #PF: its handler's fixed work."""
    cnt[GUEST_PF] += 1
    cnt[CYC_GUEST_OS] += cost


@fault_routine
def count_pte_write(cnt, cost, n):
    """The guest kernel stores n page-table entries."""
    cnt[PTE_WRITES] += n
    cnt[CYC_GUEST_OS] += n * cost


# --- entries ---------------------------------------------------------------------------------------------
@fault_routine
def make(frame, flags):
    """An entry pointing at 4 KiB frame number `frame` with `flags` (entry.make)."""
    return ((frame << 12) & ADDR_MASK) | flags


@fault_routine
def frame_of(entry):
    return (entry & ADDR_MASK) >> 12


@fault_routine
def leaf_entry(frame, size, flags):
    """The leaf entry mapping a page of size code `size` at `frame` with `flags`: present, PS for a large page."""
    return make(frame, flags | P | (PS if size else 0))


@fault_routine
def zero_page_flags(writable):
    """The guest's entry for the shared zero page, less its frame: user, accessed, read-only, and copy-on-write
    in a writable mapping, so that the first write copies it (do_anonymous_page: pte_mkspecial, no write bit)."""
    return P | US | A | (COW if writable else 0)


@fault_routine
def spte_rights(access, gentry):
    """The rights (RW, US) a shadow leaf grants for guest entry `gentry` under a shadow page of role access
    `access`: the guest's own, RW only once the guest's D bit is set (FNAME(gpte_access), protect_clean_gpte).
    Branch-free, so that it works on arrays of entries too (shadow.Shadow._sync)."""
    return access & gentry & (US | ((gentry & D) >> CLEAN_SHIFT))


@fault_routine
def table_row(rows, base, frame):
    """The row of the table page at `frame` in its memory's table array, or -1 (physmem.PhysicalMemory.rows_of)."""
    slot = frame - base
    if slot < 0 or slot >= rows.shape[0]:
        return -1
    return rows[slot]


@fault_routine
def demand_flags(writable, write):
    """The guest's entry for a fresh anonymous page, less its frame: accessed, writable in a writable mapping,
    and dirty when a write faulted it in (do_anonymous_page: maybe_mkwrite(pte_mkdirty(entry)))."""
    return P | US | A | (RW if writable else 0) | (D if write and writable else 0)


# --- guest frames and their references ---------------------------------------------------------------------
@fault_routine
def pool_pop(pool):
    """The next free 4 KiB frame (physmem.PhysicalMemory.alloc), now in use; -1 if the stack is empty."""
    n = pool[POOL_N]
    if n == 0:
        return -1
    pool[POOL_N] = n - 1
    pool[POOL_IN_USE] += 1
    return pool[POOL_FIRST + n - 1]


@fault_routine
def pool_push(pool, frame):
    """A 4 KiB frame free again (the caller has made room for it)."""
    pool[POOL_FIRST + pool[POOL_N]] = frame
    pool[POOL_N] += 1
    pool[POOL_IN_USE] -= 1


@fault_routine
def refs_new(counts, frame, size):
    """A new block of this size at frame, mapped once (page_refs.PageRefs.alloc)."""
    counts[size, frame >> (9 * size)] = 1
    counts[REFS_BLOCK + size, frame >> (9 * size)] = 1


@fault_routine
def refs_block(counts, frame, size):
    """(first frame, size) of the allocated block holding the unit (frame, size): the one block holding its
    frame, of its size or larger; (-1, -1) if there is none."""
    for bsize in range(size, REFS_BLOCK):
        if counts[REFS_BLOCK + bsize, frame >> (9 * bsize)]:
            return (frame >> (9 * bsize)) << (9 * bsize), bsize
    return -1, -1


@fault_routine
def refs_unmap(counts, frame, size):
    """Drop one mapping of the unit; returns its block (first frame, size)."""
    block, bsize = refs_block(counts, frame, size)
    counts[size, frame >> (9 * size)] -= 1
    return block, bsize


@fault_routine
def refs_shared(counts, frame, size):
    """Whether a write must copy the unit: another mapping of it, or of a larger unit holding it."""
    if counts[size, frame >> (9 * size)] > 1:
        return True
    for larger in range(size + 1, REFS_BLOCK):
        if counts[larger, frame >> (9 * larger)]:
            return True
    return False


# --- the TLB -----------------------------------------------------------------------------------------------
@fault_routine
def drop_if_page_4k(c, slot, ways, vpn, asid):
    """Empty the TLB way at `slot` (of a structure with `ways` ways) if it holds the 4 KiB
    page vpn for this VPID: under PCID asid, or global."""
    if c[slot] == vpn << 2:  # a 4 KiB page's key: its number, size code 0
        tag = c[slot + ASID * ways]
        if tag == asid or ((tag >> 12) == (asid >> 12) and c[slot + FLAGS * ways] & TF_GLOBAL):
            empty(c, slot, slot + STAMP * ways)


@fault_routine
def pcid_entry(key, tag, asid):
    """Whether a way (its key and tag) holds a translation of address space asid: its VPID's and PCID's.
    Branch-free, for one way or arrays of them (mmu.MMU's flushes)."""
    return (key != -1) & (tag == asid)


@fault_routine
def vpid_entry(key, tag, vpid):
    """Whether a way holds a translation of VPID vpid, of any PCID (INVVPID single-context)."""
    return (key != -1) & ((tag >> 12) == vpid)


@fault_routine
def drop_tagged(geom, c, s, tag, whole_vpid):
    """Empty every way of structure s holding a translation of address space `tag` (pcid_entry), or with
    whole_vpid of the VPID `tag` (vpid_entry)."""
    ways = geom[s, 2]
    if ways == 0:  # the machine has no such structure (a walk cache switched off)
        return
    block = ways * geom[s, 4]
    for first in range(geom[s, 0], geom[s, 0] + geom[s, 1] * block, block):
        for slot in range(first, first + ways):
            t = c[slot + ASID * ways]
            if vpid_entry(c[slot], t, tag) if whole_vpid else pcid_entry(c[slot], t, tag):
                empty(c, slot, slot + STAMP * ways)


@fault_routine
def drop_pcid_walk_caches(geom, c, asid):
    """Empty every paging-structure cache entry of PCID asid (INVLPG, and a flush of the PCID's entries)."""
    for s in range(S_PWC, S_PWC + 4):
        drop_tagged(geom, c, s, asid, False)


@fault_routine
def flush_vpid(geom, c, vpid):
    """Every TLB and paging-structure cache entry of one VPID, global ones too (mmu.MMU.flush_vpid)."""
    for s in range(S_L1_4K, S_L2 + 1):
        drop_tagged(geom, c, s, vpid, True)
    for s in range(S_PWC, S_PWC + 4):
        drop_tagged(geom, c, s, vpid, True)


@fault_routine
def invlpg_4k(geom, c, va, asid):
    """INVLPG where every TLB entry is a whole 4 KiB page (the guest maps no larger one): the entries of va's page,
    each in the set of its page number in the L1 4K array and in the L2, and every paging-structure cache entry
    of the PCID (mmu.MMU.invlpg says why)."""
    vpn = (va & VA_MASK) >> 12
    for s in (S_L1_4K, S_L2):
        sets = geom[s, 1]
        if sets == 0:
            continue
        ways = geom[s, 2]
        mask = geom[s, 3]
        first = geom[s, 0] + (vpn & mask if mask >= 0 else vpn % sets) * ways * geom[s, 4]
        for slot in range(first, first + ways):
            drop_if_page_4k(c, slot, ways, vpn, asid)
    drop_pcid_walk_caches(geom, c, asid)


# --- shadow pages ----------------------------------------------------------------------------------------
@fault_routine
def stale_add(meta, row, index):
    meta[row, M_STALE + (index >> 5)] |= 1 << (index & 31)


@fault_routine
def stale_discard(meta, row, index):
    meta[row, M_STALE + (index >> 5)] &= ~(1 << (index & 31))


@fault_routine
def set_leaf_spte(h_tables, meta, row, index, value):
    """Install a leaf SPTE made from the guest entry (a fill or a prefetch): it no longer lags the guest's."""
    h_tables[row, index] = value
    stale_discard(meta, row, index)


@fault_routine
def synced_spte(access, s, g, placed):
    """What FNAME(sync_spte) leaves in a present SPTE s for guest entry g: 0 if g is not present, not accessed
    (FNAME(prefetch_invalid_gpte)) or maps another frame than `placed` (where s's frame would be, had it been
    made from g); else s with its rights narrowed to the guest's (spte_rights). Syncing never widens a SPTE: the
    next write fault does. Branch-free, for entries or arrays of them (shadow.Shadow._synced_value)."""
    valid = ((g & P) != 0) & ((g & A) != 0) & (frame_of(s) == placed)
    return (s & (spte_rights(access, g) | ~(RW | US))) * valid


@fault_routine
def flush_request(cnt, sw):
    """KVM serves the TLB flush requests of one exit once, at the next entry (kvm_vcpu_flush_tlb_all,
    tlb_flush++), however many zaps asked (shadow.Shadow._flush_hw)."""
    if sw[SW_FLUSHED_SEQ] != sw[SW_SEQ]:
        sw[SW_FLUSHED_SEQ] = sw[SW_SEQ]
        cnt[TLB_FLUSH] += 1


@fault_routine
def shadow_invlpg(va, srow, index, g, geom, c, st, cnt, sw, h_tables, meta):
    """A guest INVLPG under shadow paging (shadow.Shadow.invlpg) where va's shadow path leads to the 4 KiB leaf
    page at srow, g the guest's entry now: the exit; in an unsync page the entry for va brought up to date
    (FNAME(sync_spte)) and the VPID flushed if that dropped or narrowed a present SPTE; the hardware INVLPG."""
    shadow_exit(cnt, sw, EXIT_INVLPG, sw[SW_COST_INVLPG])
    sw[SW_NOTED_EXIT] += 1
    cnt[INVLPG] += 1
    if meta[srow, M_UNSYNC]:
        s = h_tables[srow, index]
        if s & P:
            value = synced_spte(meta[srow, M_ACCESS], s, g,
                                host_frame(frame_of(g), 9 * sw[SW_HOST_SIZE], sw[SW_PLACE_MASK]))
            if value != s:
                h_tables[srow, index] = value
            stale_discard(meta, srow, index)
            sw[SW_NOTED_SHADOW_SYNC] += 1
            if value != s:
                flush_vpid(geom, c, st[ST_ASID] >> 12)
                flush_request(cnt, sw)
    invlpg_4k(geom, c, va, st[ST_ASID])
    sw[SW_NOTED_FLUSH] += 1


@fault_routine
def prefetch(h_tables, meta, row, index, extra, num, g_tables, g_rows, g_base, backed, host_size, mask):
    """FNAME(pte_prefetch): after a fault on the 4 KiB SPTE `index` of the shadow page at `row`, fill the other
    entries of its aligned group of `num` (PTE_PREFETCH_NUM) that are not present, in order. For a guest table
    page: from the guest entries, stopping at the first one not present or not accessed
    (FNAME(prefetch_invalid_gpte)) or whose host page is not backed yet (gfn_to_pfn_memslot_atomic cannot
    fault it in); rights as a fill gives them. For a direct page (a guest large page over 4 KiB host pages):
    the next frames of that page, with the page's role access (__direct_pte_prefetch), up to the first not
    backed. Prefetching is not a fault: no exit, no counter. Returns how many entries it filled."""
    if num <= 1:
        return 0
    unit_bits = 9 * host_size
    grow = -1 if meta[row, M_DIRECT] else table_row(g_rows, g_base, meta[row, M_GFN])
    start = index & ~(num - 1)
    filled = 0
    for i in range(start, start + num):
        if i == index or h_tables[row, i] & P:
            continue
        if meta[row, M_DIRECT]:
            gfn = meta[row, M_GFN] + i
            flags = P | A | meta[row, M_ACCESS] | extra
        else:
            g = g_tables[grow, i]
            if not (g & P and g & A):
                break
            gfn = frame_of(g)
            flags = P | A | spte_rights(meta[row, M_ACCESS], g) | (g & (G | NX))
        unit = gfn >> unit_bits
        if unit >= backed.shape[0] or not backed[unit]:
            break
        set_leaf_spte(h_tables, meta, row, i, make(host_frame(gfn, unit_bits, mask), flags))
        filled += 1
    return filled


# --- the fast path ---------------------------------------------------------------------------------------
@fault_routine
def vma_writable(vmas, va):
    """1 or 0: whether the VMA holding va is writable; -1 if no VMA holds it (vmas: sorted start, end, writable)."""
    lo = 0
    hi = vmas.shape[0]
    while lo < hi:  # the last VMA starting at or below va
        mid = (lo + hi) >> 1
        if vmas[mid, 0] <= va:
            lo = mid + 1
        else:
            hi = mid
    if lo == 0 or va >= vmas[lo - 1, 1]:
        return -1
    return vmas[lo - 1, 2]


@routine
def fast_fault(code, va, write, g_tables, g_rows, h_tables, h_rows, geom, c, st, cnt, sw, vmas, pool, counts, backed,
               meta, gfn_pages):
    """Handle the fault the kernel stopped at if it is one of the common ones (the module docstring); returns
    whether it did. A fault it does not take is left untouched, for the Python handlers. `va` is the faulting
    address: a guest-physical one for a nested page fault.

    The entry is inlined into the batch kernel (a routine), the work it calls is not (fault routines): called,
    with some hundred scalar arguments (every array's fields), it made a native fault take half as long again
    and a shadow one nearly twice as long (README, Page faults)."""
    if not sw[SW_FAST]:
        return False
    if code == STOP_NPF:  # (each build compiles only what its modes take: build.py)
        if WALK_2D:
            return nested_fault(va >> 12, h_tables, h_rows, st, cnt, sw, backed)
        return False
    if va < 0:
        return False
    levels = st[ST_GLEVELS]
    if va >> (12 + 9 * levels - 1):  # not canonical: the guest OS's handler says so
        return False
    shadow = st[ST_MODE] == MODE_SHADOW
    if code != (STOP_SHADOW_FAULT if shadow else STOP_GUEST_FAULT):
        return False
    g_base = st[ST_G_BASE]
    h_base = st[ST_H_BASE]
    # The guest's table, walked in software (by the guest's fault handler, or the hypervisor's FNAME(walk_addr)),
    # and under shadow paging the shadow path beside it: each link must lead to the shadow page of the guest
    # table it shadows, with the rights granted above it (kvm_mmu_find_shadow_page's role.access).
    gtable = sw[SW_GCR3]
    srow = table_row(h_rows, h_base, st[ST_ROOT]) if shadow else -1
    linked = shadow and srow >= 0 and meta[srow, M_SHADOW] == 1 and meta[srow, M_GFN] == gtable \
        and meta[srow, M_DIRECT] == 0 and meta[srow, M_ACCESS] == RW | US
    rights = RW | US
    for level in range(levels, 1, -1):
        index = (va >> (12 + 9 * (level - 1))) & 511
        grow = table_row(g_rows, g_base, gtable)
        if grow < 0:
            return False
        g = g_tables[grow, index]
        if not g & P or g & PS:  # no page table yet, or a large page: not a common fault
            return False
        rights &= g
        gtable = frame_of(g)
        if linked:
            s = h_tables[srow, index]
            srow = table_row(h_rows, h_base, frame_of(s)) if s & P else -1
            linked = srow >= 0 and meta[srow, M_SHADOW] == 1 and meta[srow, M_GFN] == gtable \
                and meta[srow, M_LEVEL] == level - 1 and meta[srow, M_DIRECT] == 0 \
                and meta[srow, M_ACCESS] == rights & (RW | US)
    index = (va >> 12) & 511
    grow = table_row(g_rows, g_base, gtable)
    if grow < 0:
        return False
    leaf = g_tables[grow, index]
    host_size = sw[SW_HOST_SIZE]
    if leaf & P:
        if WALK_1D and shadow:  # a hidden fault, unless the guest's own entry forbids the write (copy-on-write: injected)
            if write and not rights & leaf & RW:
                return shadow_cow(va, levels, grow, index, gtable, leaf, rights, linked, srow, g_tables, g_rows,
                                  g_base, h_tables, geom, c, st, cnt, sw, vmas, pool, counts, backed, meta, gfn_pages)
            if not linked or (write and not leaf & D):  # no shadow path yet, or the dirty-tracking exit
                return False
            shadow_fill(va, levels, grow, index, leaf, rights, srow, g_tables, g_rows, g_base, h_tables, h_rows,
                        h_base, st, cnt, sw, backed, meta, host_size)
            return True
        if not write or leaf & RW or not leaf & COW or sw[SW_MAX_PAGE] or vma_writable(vmas, va) != 1:
            return False
        copy = cow_plan(leaf, sw, pool, counts)
        if copy < 0:
            return False
        guest_cow(va, leaf, copy, grow, index, -1, g_tables, geom, c, st, cnt, sw, pool, counts, h_tables, meta)
        return True
    # a demand fault: the guest maps the zero page or a fresh page into its page table (under shadow paging,
    # after the hypervisor reflected the fault to it)
    writable = vma_writable(vmas, va)
    if writable < 0:  # outside every VMA: an implicit one to make
        return False
    if write:
        if not writable or pool[POOL_N] == 0:  # a write to a read-only mapping, or no frame without a new chunk
            return False
    elif sw[SW_ZERO_FRAME] < 0:  # the zero page is allocated at its first use
        return False
    if WALK_1D and shadow:
        shadowed = gfn_pages[gtable] if gtable < gfn_pages.shape[0] else 0
        # the guest's store: plain if nothing shadows the table; if the one page that does is unsync it only
        # notes the entry as stale; a write-protected table traps, and that is the Python handler's
        if shadowed and not (shadowed == 1 and linked and meta[srow, M_UNSYNC]):
            return False
        inject(va, levels, g_tables, g_rows, g_base, cnt, sw, backed)
        if shadowed:
            stale_add(meta, srow, index)
    count_guest_fault(cnt, sw[SW_COST_PF])
    if write:
        frame = pool_pop(pool)
        refs_new(counts, frame, 0)
        cnt[CYC_GUEST_OS] += sw[SW_COST_CLEAR]  # do_anonymous_page clears the page
        g_tables[grow, index] = make(frame, demand_flags(writable, True))
    else:
        cnt[ZERO_PAGE_MAPS] += 1
        g_tables[grow, index] = make(sw[SW_ZERO_FRAME], zero_page_flags(writable))
    count_pte_write(cnt, sw[SW_COST_PTE], 1)
    sw[SW_NOTED_GUEST_FAULT] += 1
    return True


@fault_routine
def cow_plan(leaf, sw, pool, counts):
    """How a write to the copy-on-write 4 KiB page `leaf` maps goes (guest_os.GuestOS._cow): 1 a copy (the page
    is shared, or the zero page), 0 made writable in place, -1 a case for the Python handler."""
    frame = frame_of(leaf)
    zero = sw[SW_ZERO_FRAME]
    if not (frame == zero or refs_shared(counts, frame, 0)):
        return 0
    if pool[POOL_N] == 0:
        return -1
    if frame != zero:
        block, bsize = refs_block(counts, frame, 0)
        if block < 0:
            return -1
        if counts[REFS_BLOCK + bsize, block >> (9 * bsize)] == 1 \
                and (bsize or POOL_FIRST + pool[POOL_N] >= pool.shape[0]):
            return -1  # the last reference on a large block, or no room to free a frame: Python's
    return 1


@fault_routine
def guest_cow(va, leaf, copy, grow, index, srow, g_tables, geom, c, st, cnt, sw, pool, counts, h_tables, meta):
    """A write to a copy-on-write 4 KiB page (guest_os.GuestOS._cow), as cow_plan said: copy it (wp_page_copy:
    the old translation flushed) or make it writable in place (wp_page_reuse). Under shadow paging `srow` is
    the unsync shadow page of the guest's table (the store only makes its entry stale) and the INVLPG exits
    (shadow_invlpg); else -1."""
    frame = frame_of(leaf)
    zero = sw[SW_ZERO_FRAME]
    count_guest_fault(cnt, sw[SW_COST_PF])
    cnt[COW_FAULTS] += 1
    if copy:
        cnt[CYC_GUEST_OS] += sw[SW_COST_COPY] if frame != zero else sw[SW_COST_CLEAR]  # a zeroed page for the zero page
        if frame != zero:
            block, bsize = refs_unmap(counts, frame, 0)
            counts[REFS_BLOCK + bsize, block >> (9 * bsize)] -= 1
            if counts[REFS_BLOCK + bsize, block >> (9 * bsize)] == 0:
                pool_push(pool, block)
        frame = pool_pop(pool)
        refs_new(counts, frame, 0)
    entry = make(frame, (leaf & ~ADDR_MASK & ~COW) | RW | A | D)
    g_tables[grow, index] = entry
    if WALK_1D and srow >= 0:
        stale_add(meta, srow, index)
    count_pte_write(cnt, sw[SW_COST_PTE], 1)
    if copy:
        if WALK_1D and srow >= 0:
            shadow_invlpg(va, srow, index, entry, geom, c, st, cnt, sw, h_tables, meta)
        else:
            invlpg_4k(geom, c, va, st[ST_ASID])
            sw[SW_NOTED_FLUSH] += 1
        cnt[GUEST_INVLPGS] += 1
    sw[SW_NOTED_GUEST_FAULT] += 1


@fault_routine
def nested_fault(gfn, h_tables, h_rows, st, cnt, sw, backed):
    """A nested page fault (modes.Nested.handle: kvm_mmu_page_fault -> kvm_tdp_page_fault, pf_taken and pf_fixed):
    the hypervisor backs the host page holding gfn and maps it in the nested table, if the nested table page
    for it exists (a new one is allocated by the Python handler)."""
    host_size = st[ST_HOST_SIZE]
    gpage = (gfn >> (9 * host_size)) << (9 * host_size)
    table = st[ST_NROOT]
    h_base = st[ST_H_BASE]
    for level in range(st[ST_HLEVELS], host_size + 1, -1):
        row = table_row(h_rows, h_base, table)
        e = h_tables[row, ((gpage << 12) >> (12 + 9 * (level - 1))) & 511]
        if not e & P or e & PS:
            return False
        table = frame_of(e)
    row = table_row(h_rows, h_base, table)
    unit_bits = 9 * host_size
    back_host_page(backed, gfn >> unit_bits, cnt, sw[SW_HOST_ALLOC])
    h_tables[row, ((gpage << 12) >> (12 + unit_bits)) & 511] = leaf_entry(
        host_frame(gpage, unit_bits, sw[SW_PLACE_MASK]), host_size, RW | US)
    count_exit(cnt, EXIT_NPF, sw[SW_VM_EXIT], sw[SW_COST_NPF])
    sw[SW_NOTED_EXIT] += 1
    cnt[PF_TAKEN] += 1
    cnt[PF_FIXED] += 1
    return True


@fault_routine
def inject(va, levels, g_tables, g_rows, g_base, cnt, sw, backed):
    """The hypervisor's software walk found the fault the guest's own: it reflects the #PF into the guest
    (kvm_inject_page_fault; shadow.Shadow.handle: pf_taken and pf_guest, the walk's table pages backed)."""
    shadow_exit(cnt, sw, EXIT_GUEST_PF_INJECT, sw[SW_COST_INJECT])
    sw[SW_NOTED_EXIT] += 1
    cnt[PF_TAKEN] += 1
    cnt[PF_GUEST] += 1
    back_path_tables(va, levels, g_tables, g_rows, g_base, sw, cnt, backed, sw[SW_HOST_SIZE])


@fault_routine
def shadow_cow(va, levels, grow, index, gtable, leaf, rights, linked, srow, g_tables, g_rows, g_base, h_tables, geom, c,
               st, cnt, sw, vmas, pool, counts, backed, meta, gfn_pages):
    """Under shadow paging, a write to a copy-on-write 4 KiB page the guest maps read-only: the fault is
    injected and the guest copies or reuses the page (guest_cow), where its store is a plain one (the only
    shadow page of its table is unsync: the entry goes stale) and its INVLPG exits (shadow_invlpg)."""
    if not (linked and leaf & COW and rights & RW) or sw[SW_MAX_PAGE] or vma_writable(vmas, va) != 1:
        return False
    if gtable >= gfn_pages.shape[0] or gfn_pages[gtable] != 1 or not meta[srow, M_UNSYNC]:  # write-protected: Python's
        return False
    copy = cow_plan(leaf, sw, pool, counts)
    if copy < 0:
        return False
    inject(va, levels, g_tables, g_rows, g_base, cnt, sw, backed)
    guest_cow(va, leaf, copy, grow, index, srow, g_tables, geom, c, st, cnt, sw, pool, counts, h_tables, meta)
    return True


@fault_routine
def back_path_tables(va, levels, g_tables, g_rows, g_base, sw, cnt, backed, host_size):
    """The hypervisor's software walk reads each guest table page of va's path through its own mapping of guest
    memory, which backs the host page on first use (shadow.Shadow._back_tables); counts the entries read."""
    table = sw[SW_GCR3]
    for level in range(levels, 0, -1):
        back_host_page(backed, table >> (9 * host_size), cnt, sw[SW_HOST_ALLOC])
        cnt[HV_WALK_REFS] += 1
        if level > 1:
            row = table_row(g_rows, g_base, table)
            table = frame_of(g_tables[row, (va >> (12 + 9 * (level - 1))) & 511])


@fault_routine
def shadow_fill(va, levels, grow, index, leaf, rights, srow, g_tables, g_rows, g_base, h_tables, h_rows, h_base,
                st, cnt, sw, backed, meta, host_size):
    """A hidden fault on a present 4 KiB guest leaf under an existing shadow path (shadow.Shadow.handle and
    _fill): the hypervisor sets the guest's A bit, installs the leaf SPTE and prefetches its neighbours."""
    shadow_exit(cnt, sw, EXIT_SHADOW_FAULT, sw[SW_COST_FILL])
    sw[SW_NOTED_EXIT] += 1
    cnt[PF_TAKEN] += 1
    cnt[PF_FIXED] += 1
    back_path_tables(va, levels, g_tables, g_rows, g_base, sw, cnt, backed, host_size)
    leaf |= A
    g_tables[grow, index] = leaf  # the hypervisor's own store: not trapped
    # every shadow page of the path was used: its write-flooding count starts again
    row = table_row(h_rows, h_base, st[ST_ROOT])
    for level in range(levels, 1, -1):
        meta[row, M_FLOOD] = 0
        row = table_row(h_rows, h_base, frame_of(h_tables[row, (va >> (12 + 9 * (level - 1))) & 511]))
    meta[row, M_FLOOD] = 0
    gfn = frame_of(leaf)
    unit_bits = 9 * host_size
    back_host_page(backed, gfn >> unit_bits, cnt, sw[SW_HOST_ALLOC])
    extra = leaf & (G | NX)
    flags = P | A | (rights & spte_rights(RW | US, leaf)) | extra
    set_leaf_spte(h_tables, meta, row, index, make(host_frame(gfn, unit_bits, sw[SW_PLACE_MASK]), flags))
    sw[SW_NOTED_SHADOW_SYNC] += 1
    if prefetch(h_tables, meta, row, index, extra, sw[SW_PREFETCH], g_tables, g_rows, g_base, backed, host_size,
                sw[SW_PLACE_MASK]):
        sw[SW_NOTED_SHADOW_SYNC] += 1
