"""Shadow paging: the hypervisor keeps gVA->hPA tables that the hardware walks natively.

Modelled on KVM's shadow MMU (Documentation/virt/kvm/x86/mmu.rst, mmu.c;
notes §4): shadow pages are keyed by the guest table frame they shadow and
their role (level, direct, access: ``union kvm_mmu_page_role``, looked up by
``kvm_mmu_find_shadow_page``), filled lazily on a hidden fault, and kept in sync
by write-protecting every shadowed guest table page, so that each guest write
to one exits and is emulated (``mmu_pte_write``). A guest CR3 load and INVLPG
exit; guest #PFs are intercepted and reflected (``pf_guest``). The shadow leaf
stays read-only until the guest's D bit is set, so the first write to a clean
page exits once (``dirty_track``).

KVM's two refinements are switches: *unsync* 4 KiB leaf shadow pages (the
first write exits once and unprotects the page; later writes do not exit; the
page is resynced at the guest's next TLB flush or CR3 load, and an INVLPG
refreshes the one entry it names, leaving the page unsync) and *write
flooding* (a non-leaf shadow page written ``flood_threshold`` times without
being used by a fill in between is zapped: ``mmu_flooded``).

A hidden fault on a 4 KiB shadow page also fills up to 7 neighbours of the
faulting entry (FNAME(pte_prefetch)). The host page behind a guest frame is
allocated inside the first fault that needs it, as under nested paging
(``Mode.back_host_page``).

Counters are incremented where KVM increments them (``counters.KVM_MEANINGS``).

Simplification: when the guest frees a table page, its shadow pages are
zapped at once (KVM gets there later, through flooding or zap-on-reuse).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import entry as E
from . import events as ev
from .counters import INDEX
from .fast_fault import flush_request, prefetch, set_leaf_spte, shadow_exit, stale_add, stale_discard, synced_spte
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
    N_META,
    SI_ADDR,
    SI_WRITE,
    STOP_SHADOW_FAULT,
    SW_COST_FILL,
    SW_COST_INJECT,
    SW_COST_INVLPG,
    SW_FLUSHED_SEQ,
    SW_PREFETCH,
    SW_SEQ,
    SW_UNSYNC,
    SW_VM_EXIT,
)
from .modes import Mode
from .snapshot import PathRow

if TYPE_CHECKING:
    from .guest_os import Process

LINK = E.P | E.RW | E.US | E.A  # a non-leaf shadow entry; rights are enforced at the leaf


class ShadowPage:
    """One shadow page: its host table page, the role it was made for, and its links.

    Its sync state, write-flooding count and stale entries live in the shadow mode's `meta` row for the page
    (layout M_*), which the fast fault path reads and writes too (fast_fault.py)."""

    __slots__ = ("owner", "frame", "row", "gfn", "level", "direct", "access", "parents", "children")

    def __init__(self, owner: Shadow, frame: int, gfn: int, level: int, direct: bool, access: int):
        self.owner = owner
        self.frame = frame  # host frame of the shadow table page
        self.row = owner.hmem.row(frame)  # its row in the host's table array, and in owner.meta
        self.gfn = gfn  # guest table frame it shadows (direct pages: first guest frame of the region)
        self.level = level
        self.direct = direct  # shadows part of a guest large page, not a guest table
        # role.access: the rights (RW, US) the guest grants above this page; for a direct page, the
        # large leaf's own too, less RW while the leaf is clean (FNAME(gpte_access), protect_clean_gpte).
        # Two mappings with different rights never share a page: a forked child's read-only view of a
        # large page must not reach the parent's writable entries.
        self.access = access
        self.parents: set[tuple[ShadowPage, int]] = set()
        self.children: dict[int, ShadowPage] = {}  # index -> child ShadowPage

    @property
    def unsync(self) -> bool:
        return bool(self.owner.meta[self.row, M_UNSYNC])

    @property
    def flood(self) -> int:
        """Emulated writes since the hypervisor last used the page."""
        return int(self.owner.meta[self.row, M_FLOOD])

    @flood.setter
    def flood(self, value: int) -> None:
        self.owner.meta[self.row, M_FLOOD] = value

    @property
    def stale(self) -> set[int]:
        """Entries of an unsync page the guest wrote since it went unsync: their shadow entry may lag the guest's
        until a sync, an INVLPG of their address or a fault on them refreshes it (KVM: the unsync page's SPTEs are
        whatever they were when the guest's stores stopped trapping)."""
        words = self.owner.meta[self.row, M_STALE:M_STALE + 16]
        return {w * 32 + b for w in range(16) for b in range(32) if (int(words[w]) >> b) & 1}


class Shadow(Mode):
    name = "shadow"
    code = MODE_SHADOW
    vpid = 1
    virtualized = True

    def attach(self, machine) -> None:
        super().attach(machine)
        cfg = machine.config
        self.cost = {k: cfg[f"cost.{k}_handler"] for k in ("shadow_fill", "pt_write", "cr3", "invlpg", "inject", "dirty")}
        machine.sw[SW_COST_INJECT] = self.cost["inject"]
        machine.sw[SW_COST_FILL] = self.cost["shadow_fill"]
        machine.sw[SW_PREFETCH] = cfg["shadow.prefetch"]
        machine.sw[SW_COST_INVLPG] = self.cost["invlpg"]
        machine.sw[SW_FLUSHED_SEQ] = -1
        self.unsync_enabled = cfg["shadow.unsync"]
        self.flooding = cfg["shadow.flooding"]
        self.flood_threshold = cfg["shadow.flood_threshold"]
        self.prefetch_num = cfg["shadow.prefetch"]  # PTE_PREFETCH_NUM
        guest_pages = cfg["guest.mem_gib"] << 18
        self.max_pages = cfg["shadow.max_pages"] or max(64, guest_pages // 50)  # KVM: 2 % of memslot pages
        self.host_size = E.size_code(cfg["host.page"])
        self.levels = cfg["guest.levels"]
        self.pages: dict[tuple[int, int, bool, int], ShadowPage] = {}  # insertion order = age, for recycling
        self.by_gfn: dict[int, list[ShadowPage]] = {}  # guest table frame -> its (non-direct) shadow pages
        self.roots: dict[int, ShadowPage] = {}  # guest CR3 frame -> root shadow page
        self.current_root: ShadowPage | None = None
        # a row per host table row: the state of the shadow page there (layout M_*; ShadowPage reads it)
        self.meta = np.zeros((len(self.hmem.tables), N_META), dtype=np.int64)
        self.gfn_pages = np.zeros(64, dtype=np.int32)  # guest frame -> how many (non-direct) shadow pages it has

    @property
    def seq(self) -> int:
        """Exits so far: KVM's flush requests made during one exit are served once, at the entry."""
        return int(self.m.sw[SW_SEQ])

    # --- accounting ----------------------------------------------------------------------------
    @property
    def hmem(self):
        return self.m.host.mem

    @property
    def n_unsync(self) -> int:
        """The mmu_unsync gauge's live value."""
        return int(self.m.sw[SW_UNSYNC])

    def _exit(self, reason: str, cycles: int, detail: str = "") -> None:
        m = self.m
        shadow_exit(m.cnt, m.sw, INDEX["exit_" + reason], cycles)
        m.note(ev.Exit, reason, int(m.sw[SW_VM_EXIT]) + cycles, detail)

    def _fault_exit(self, reason: str, cycles: int, detail: str, outcome: str | None) -> None:
        """An intercepted #PF: kvm_mmu_page_fault counts pf_taken, then pf_fixed (RET_PF_FIXED) or pf_emulate
        (RET_PF_EMULATE) by what the fault handler returned; an injected fault is neither."""
        self._exit(reason, cycles, detail)
        self.m.count("pf_taken")
        if outcome is not None:
            self.m.count(outcome)

    def _gauge(self) -> None:
        """mmu_unsync is a gauge (kvm_unsync_page ++, kvm_unlink_unsync_page --): the slot holds the live
        count, rewritten whenever the hypervisor runs (fast_fault.shadow_exit), so that a counter reset keeps
        it right."""
        self.m.cnt[INDEX["mmu_unsync"]] = self.n_unsync

    def _set_unsync(self, sp: ShadowPage, unsync: bool) -> None:
        if sp.unsync == unsync:
            return
        self.meta[sp.row, M_UNSYNC] = unsync
        self.m.sw[SW_UNSYNC] += 1 if unsync else -1
        if not unsync:
            self.meta[sp.row, M_STALE:M_STALE + 16] = 0
        self._gauge()

    # --- shadow pages --------------------------------------------------------------------------

    def _get_page(self, gfn: int, level: int, direct: bool, access: int) -> ShadowPage:
        """The shadow page of this guest frame and role, made on a miss (kvm_mmu_get_shadow_page)."""
        key = (gfn, level, direct, access)
        sp = self.pages.get(key)
        if sp is not None:
            return sp
        self.m.count("mmu_cache_miss")
        if len(self.pages) >= self.max_pages:
            self._recycle()
        sp = ShadowPage(self, self.hmem.alloc_table(), gfn, level, direct, access)
        if sp.row >= len(self.meta):
            self.meta = np.concatenate([self.meta, np.zeros_like(self.meta)])
        self.meta[sp.row] = 0
        self.meta[sp.row, [M_SHADOW, M_GFN, M_LEVEL, M_DIRECT, M_ACCESS]] = (1, gfn, level, direct, access)
        self.pages[key] = sp
        if not direct:
            self.by_gfn.setdefault(gfn, []).append(sp)
            if gfn >= len(self.gfn_pages):
                self.gfn_pages = np.concatenate([self.gfn_pages, np.zeros(max(gfn + 1, 2 * len(self.gfn_pages))
                                                                          - len(self.gfn_pages), dtype=np.int32)])
            self.gfn_pages[gfn] += 1
        return sp

    def _recycle(self) -> None:
        """Over the cap: zap the oldest page that is not the root in use (KVM mmu_recycled)."""
        for sp in list(self.pages.values()):
            if sp is not self.current_root and sp not in self.roots.values():
                self.m.count("mmu_recycled")
                self._zap(sp, "recycle")
                return

    def write_protected(self, gfn: int) -> bool:
        """A guest table page is write-protected while a synced shadow page shadows it."""
        return any(not sp.unsync for sp in self.by_gfn.get(gfn, ()))

    def _set(self, sp: ShadowPage, index: int, value: int) -> None:
        self._unlink(sp, index)
        self.hmem.write(sp.frame, index, value)

    def _unlink(self, sp: ShadowPage, index: int) -> None:
        """Forget the link entry `index` of sp held to a child page, if it held one (its SPTE is rewritten next)."""
        old_child = sp.children.pop(index, None)
        if old_child is not None:
            old_child.parents.discard((sp, index))

    def _link(self, sp: ShadowPage, index: int, child: ShadowPage) -> None:
        """Point entry `index` of sp at child. Replacing a link to another page (a direct page of other
        rights) flushes the TLB, as KVM's validate_direct_spte does after drop_parent_pte."""
        old = sp.children.get(index)
        if old is child:
            return
        self._set(sp, index, E.make(child.frame, LINK))
        sp.children[index] = child
        child.parents.add((sp, index))
        if old is not None:
            self._flush_hw()

    def _zap(self, sp: ShadowPage, why: str) -> None:
        """Remove a shadow page: unlink it from its parents and children, free its frame, flush."""
        self.m.count("mmu_shadow_zapped")
        self._set_unsync(sp, False)  # kvm_mmu_prepare_zap_page -> kvm_unlink_unsync_page
        for parent, index in list(sp.parents):
            self._set(parent, index, 0)
        for index in list(sp.children):
            self._set(sp, index, 0)
        del self.pages[(sp.gfn, sp.level, sp.direct, sp.access)]
        if not sp.direct:
            peers = self.by_gfn[sp.gfn]
            peers.remove(sp)
            if not peers:
                del self.by_gfn[sp.gfn]
            self.gfn_pages[sp.gfn] -= 1
        for cr3, root in list(self.roots.items()):
            if root is sp:
                del self.roots[cr3]
        if sp is self.current_root:
            self.current_root = None
        self.meta[sp.row] = 0
        self.hmem.free_table(sp.frame)
        self._flush_hw()
        self.m.note(ev.ShadowSync, why, 0, sp.gfn, sp.level)

    def _flush_hw(self) -> None:
        """KVM flushes the vCPU's TLB after zapping present SPTEs: kvm_mmu_commit_zap_page and
        kvm_mmu_remote_flush_or_zap call kvm_flush_remote_tlbs, which raises KVM_REQ_TLB_FLUSH; the vCPU serves
        it before it re-enters the guest (kvm_vcpu_flush_tlb_all, tlb_flush++), once however many zaps asked."""
        self.m.mmu.flush_vpid(self.vpid)
        flush_request(self.m.cnt, self.m.sw)

    # --- the guest's privileged actions ------------------------------------------------------------
    def pte_writes(self, table: int, indices: list[int], olds: list[int], news: list[int]) -> None:
        """Guest stores to one of its table pages, one by one (pte_write); a table no shadow page shadows takes
        plain stores. Once no synced shadow page shadows the table, the stores left are plain ones that only mark
        their entries stale in its (unsync) shadow pages, and no such store changes that: they are marked at once
        (a fork or an exit writes whole table pages)."""
        for i, (index, old, new) in enumerate(zip(indices, olds, news)):
            pages = self.by_gfn.get(table)
            if not pages:
                return
            if not self.write_protected(table):
                rest = np.asarray(indices[i:], dtype=np.int64)
                for sp in pages:  # stale_add on each
                    np.bitwise_or.at(self.meta[sp.row], M_STALE + (rest >> 5), 1 << (rest & 31))
                return
            self.pte_write(table, index, old, new)

    def pte_write(self, table: int, index: int, old: int, new: int) -> None:
        """A guest store to one of its table pages.

        Not shadowed: a plain store. Shadowed by unsync pages only: a plain store too, and the entry may lag
        until the next sync. Write-protected (a synced shadow page): the store faults. If every shadow page of
        the table is a 4 KiB leaf and unsync is on, KVM fixes the fault by unsyncing them
        (mmu_try_to_unsync_pages -> kvm_unsync_page; RET_PF_FIXED) and the guest's store then goes through.
        Otherwise the table is write-tracked (account_shadowed), the fault is emulated (RET_PF_EMULATE) and
        kvm_mmu_pte_write zaps the written SPTE in every shadow page of the table, counting mmu_pde_zapped
        for a present new entry in a non-leaf one, and flushes once if a zapped SPTE was present."""
        pages = self.by_gfn.get(table)
        if not pages:
            return
        if not self.write_protected(table):
            for sp in pages:
                stale_add(self.meta, sp.row, index)
            return
        leaf_pages = [sp for sp in pages if sp.level == 1]
        if self.unsync_enabled and len(leaf_pages) == len(pages):
            self._fault_exit("pt_write", self.cost["pt_write"], f"unsync gPT {table << 12:#x}", "pf_fixed")
            for sp in pages:
                if not sp.unsync:
                    self._set_unsync(sp, True)
                    self.m.note(ev.ShadowSync, "unsync", 0, table, sp.level)
                stale_add(self.meta, sp.row, index)
            return
        self._fault_exit("pt_write", self.cost["pt_write"], f"gPT {table << 12:#x}[{index}]", "pf_emulate")
        self.m.count("mmu_pte_write")
        flush = False
        for sp in list(pages):
            if self.flooding and sp.level > 1:  # detect_write_flooding skips 4 KiB pages
                sp.flood += 1
                if sp.flood >= self.flood_threshold:
                    self.m.count("mmu_flooded")
                    self._zap(sp, "flood-zap")
                    continue
            was = self.hmem.read(sp.frame, index)
            if new and sp.level > 1:
                self.m.count("mmu_pde_zapped")
            if was & E.P:
                self._set(sp, index, 0)  # current KVM zaps the SPTE rather than prefetching the new one
                flush = True
            stale_discard(self.meta, sp.row, index)
            self.m.note(ev.ShadowSync, "emulate", 0, table, sp.level)
        if flush:
            self._flush_hw()

    def table_freed(self, table: int) -> None:
        for sp in list(self.by_gfn.get(table, ())):
            self._zap(sp, "zap")

    def load_cr3(self, proc: Process, flush: bool = False) -> None:
        """mov cr3 exits: switch to (or build) the shadow root and resync unsync pages. A load that flushes
        (no PCID, or a fresh address space) is also a TLB flush: kvm_set_cr3 -> kvm_mmu_new_pgd raises
        KVM_REQ_TLB_FLUSH_CURRENT unless the guest set CR3's no-flush bit (kvm_vcpu_flush_tlb_current,
        tlb_flush++)."""
        m = self.m
        root = self._root_for(proc.root)
        self._exit("cr3_write", self.cost["cr3"], f"gCR3 {proc.root << 12:#x}")
        self._sync_all()
        self.enter(proc, root.frame)
        if flush or not m.os.pcid_enabled:
            m.count("tlb_flush")
        if flush:
            m.mmu.flush_asid(self.asid(proc), keep_global=True)
            m.note(ev.Flush, "asid", self.asid(proc))

    def _root_for(self, gcr3: int) -> ShadowPage:
        root = self.roots.get(gcr3)
        if root is None:
            root = self._get_page(gcr3, self.levels, False, E.RW | E.US)
            self.roots[gcr3] = root
            self.m.note(ev.ShadowSync, "root", 0, gcr3, self.levels)
        self.current_root = root
        return root

    def invlpg(self, proc: Process, va: int) -> None:
        """INVLPG exits (kvm_mmu_invlpg, invlpg++). KVM walks the shadow path of va (FNAME(invlpg) up to
        Linux 6.4, __kvm_mmu_invalidate_addr since): an in-sync page is left alone, since its entries already
        follow the guest's; in an unsync leaf page only the entry for va is brought up to date
        (FNAME(sync_spte): dropped if the guest entry is gone, not accessed or maps another frame, else its
        rights narrowed to the guest's; a non-present entry is left for the next fault) and the page stays
        unsync. KVM flushes after dropping or narrowing a present SPTE; the hardware INVLPG of va is always
        done on the guest's behalf (kvm_x86_ops.flush_tlb_gva)."""
        self._exit("invlpg", self.cost["invlpg"], f"{va:#x}")
        self.m.count("invlpg")
        sp, level = self.roots.get(proc.root), self.levels
        while sp is not None:
            index = E.index_at(va, level)
            child = sp.children.get(index)
            if child is None:
                if sp.unsync:  # only 4 KiB leaf pages are ever unsync
                    self._sync_spte(sp, index)
                break
            sp, level = child, level - 1
        self.m.mmu.invlpg(va, self.asid(proc))
        self.m.note(ev.Flush, "invlpg", va)

    def flush_tlb(self, proc: Process) -> None:
        """A guest TLB flush is a CR3 reload: it exits and resyncs every unsync page (kvm_vcpu_flush_tlb_guest:
        tlb_flush++, kvm_mmu_sync_roots)."""
        self._exit("cr3_write", self.cost["cr3"], "TLB flush")
        self.m.count("tlb_flush")
        self._sync_all()
        self.m.mmu.flush_asid(self.asid(proc), keep_global=True)
        self.m.note(ev.Flush, "asid", self.asid(proc))

    def _sync_all(self) -> None:
        for sp in list(self.pages.values()):
            if sp.unsync:
                self._sync(sp)

    def _synced_value(self, sp: ShadowPage, s, g):
        """What FNAME(sync_spte) leaves in a present SPTE s for guest entry g: 0 if g is not present, not
        accessed (FNAME(prefetch_invalid_gpte)) or maps another frame; else s with its rights narrowed to the
        guest's (sp's role access, the guest's RW/US, RW only once dirty: FNAME(protect_clean_gpte)). Syncing
        never widens a SPTE: the next write fault does. s and g are entries, or arrays of them."""
        return synced_spte(sp.access, s, g, self.m.host.placement(E.frame_of(g)))

    def _sync_spte(self, sp: ShadowPage, index: int) -> bool:
        """Bring one entry of an unsync page up to date (kvm_sync_spte); returns whether KVM flushes."""
        s = self.hmem.read(sp.frame, index)
        flush = False
        if s & E.P:
            value = self._synced_value(sp, s, self.m.gmem.read(sp.gfn, index))
            if value != s:
                self._set(sp, index, value)
                flush = True
            stale_discard(self.meta, sp.row, index)
            self.m.note(ev.ShadowSync, "sync-spte", 0, sp.gfn, sp.level)
        if flush:
            self._flush_hw()
        return flush

    def _sync(self, sp: ShadowPage) -> None:
        """Resync an unsync leaf page (kvm_sync_page: FNAME(sync_spte) on every present SPTE), write-protect
        it again (kvm_unlink_unsync_page: mmu_unsync falls) and flush if any SPTE was dropped or narrowed."""
        changed = False
        if self.m.gmem.is_table(sp.gfn):
            shadow = self.hmem.table(sp.frame)
            present = np.flatnonzero(shadow & E.P)
            s = shadow[present]
            value = self._synced_value(sp, s, self.m.gmem.table(sp.gfn)[present])
            changed = bool((value != s).any())
            if changed:
                for index in present[value != s].tolist():
                    self._unlink(sp, index)
                shadow[present] = value
        self._set_unsync(sp, False)
        if changed:
            self._flush_hw()
        self.m.note(ev.ShadowSync, "resync", 0, sp.gfn, sp.level)

    # --- faults -------------------------------------------------------------------------------------
    def handle(self, code: int, stop) -> None:
        """An intercepted #PF (kvm_mmu_page_fault, pf_taken++): FNAME(page_fault) walks the guest table in
        software (FNAME(walk_addr)); a fault the guest's own table does not allow is injected (pf_guest);
        otherwise FNAME(fetch) installs the SPTE (pf_fixed), setting the guest's A, and D on a write
        (FNAME(update_accessed_dirty_bits)), which is the dirty-tracking exit."""
        if code != STOP_SHADOW_FAULT:
            super().handle(code, stop)
            return
        m = self.m
        va = int(stop[SI_ADDR])
        write = bool(stop[SI_WRITE])
        proc = m.os.current
        path = proc.table.walk(va)  # the hypervisor walks the guest table in software
        m.count("hv_walk_refs", len(path))
        leaf = path[-1]
        rights = E.RW
        for p in path:
            rights &= p.value
        if not leaf.leaf or (write and not rights & E.RW):
            self._fault_exit("guest_pf_inject", self.cost["inject"], f"#PF {va:#x}", None)
            m.count("pf_guest")
            self._back_tables(path)
            m.guest_page_fault(stop)  # the guest kernel handles it as it would natively
            return
        if write and not leaf.value & E.D:
            # A/D emulation: the guest's D bit is set by the hypervisor, the shadow leaf made writable
            self._fault_exit("dirty_track", self.cost["dirty"], f"{va:#x}", "pf_fixed")
            leaf = leaf._replace(value=leaf.value | E.D | E.A)
        else:
            self._fault_exit("shadow_fault", self.cost["shadow_fill"], f"{va:#x}", "pf_fixed")
            leaf = leaf._replace(value=leaf.value | E.A)
        self._back_tables(path)
        m.gmem.write(leaf.table, leaf.index, leaf.value)  # the hypervisor's own store: not trapped
        self._fill(proc, va, path[:-1] + [leaf])

    def _back_tables(self, path) -> None:
        """The software walk reads each guest table page through the host's mapping of guest memory, which
        faults the host page in on first use (kvm_vcpu_read_guest -> a host page fault): the same allocation
        a nested walk's NPF on that table page pays for."""
        for p in path:
            self.back_host_page(p.table)

    def _fill(self, proc: Process, va: int, path) -> None:
        """Build the shadow path for va from the guest path (a hidden fault's fix-up, FNAME(fetch)), then
        prefetch the neighbours of a 4 KiB leaf (FNAME(pte_prefetch))."""
        sp = self._root_for(proc.root)
        rights = E.RW | E.US
        for p in path[:-1]:
            rights &= p.value
            sp.flood = 0  # the page was used
            child = self._get_page(E.frame_of(p.value), p.level - 1, False, rights & (E.RW | E.US))
            self._link(sp, E.index_at(va, p.level), child)
            sp = child
        leaf = path[-1]
        rights &= leaf.value
        if not leaf.value & E.D:
            rights &= ~E.RW  # a clean page stays read-only in the shadow until its first write
        rights &= E.RW | E.US
        gsize = leaf.level - 1
        tsize = min(gsize, self.host_size)
        gbase = E.frame_of(leaf.value)
        level = leaf.level
        while level > tsize + 1:  # a guest large page over smaller host pages: direct shadow pages
            sp.flood = 0
            span = 1 << (9 * (level - 1))  # guest frames under one entry of this level
            region = gbase + ((va >> 12) & ((1 << (9 * gsize)) - 1) & ~(span - 1))
            child = self._get_page(region, level - 1, True, rights)
            self._link(sp, E.index_at(va, level), child)
            sp, level = child, level - 1
        sp.flood = 0
        gfn = gbase + ((va >> 12) & ((1 << (9 * gsize)) - 1) & ~((1 << (9 * tsize)) - 1))
        self.back_host_page(gfn)  # kvm_faultin_pfn: the host page is allocated inside this fault
        extra = leaf.value & (E.G | E.NX)
        flags = E.P | E.A | rights | extra
        if tsize:
            flags |= E.PS
        index = E.index_at(va, level)
        self._unlink(sp, index)
        set_leaf_spte(self.hmem.tables, self.meta, sp.row, index, E.make(self.m.host.placement(gfn), flags))
        self.m.note(ev.ShadowSync, "fill", va, path[-1].table, level)
        if level == 1:
            self._prefetch(sp, index, extra)

    def _prefetch(self, sp: ShadowPage, index: int, extra: int) -> None:
        """FNAME(pte_prefetch) around the 4 KiB SPTE `index` of sp (fast_fault.prefetch says which entries)."""
        m = self.m
        if prefetch(self.hmem.tables, self.meta, sp.row, index, extra, self.prefetch_num, m.gmem.tables, m.gmem.rows,
                    m.gmem.base, m.host.backed, self.host_size, m.host.placement.mask):
            m.note(ev.ShadowSync, "prefetch", 0, sp.gfn, sp.level)

    # --- for the UI and the checker ---------------------------------------------------------------
    def page_state(self, gfn: int) -> str:
        pages = self.by_gfn.get(gfn)
        if not pages:
            return "not shadowed"
        if any(sp.unsync for sp in pages):
            return "unsync"
        return "write-protected"

    def second_paths(self, va: int, guest_path) -> tuple:
        root = self.roots.get(self.m.os.current.root)
        if root is None:
            return (("shadow (no root yet)", ()),)
        rows = []
        sp, level = root, self.levels
        while sp is not None:
            index = E.index_at(va, level)
            value = self.hmem.read(sp.frame, index)
            state = "direct" if sp.direct else ("unsync" if sp.unsync else "in sync")
            rows.append(PathRow(level, sp.frame, index, value, state))
            if not value & E.P:
                break
            sp = sp.children.get(index)
            level -= 1
        return ((f"shadow of gCR3 {self.m.os.current.root << 12:#x}", tuple(rows)),)
