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
page is resynced at the guest's next TLB flush, CR3 load or INVLPG) and *write
flooding* (a non-leaf shadow page written ``flood_threshold`` times without
being used by a fill in between is zapped: ``mmu_flooded``).

The host page behind a guest frame is allocated inside the first fault that
needs it, as under nested paging (``Mode.back_host_page``).

Simplification: when the guest frees a table page, its shadow pages are
zapped at once (KVM gets there later, through flooding or zap-on-reuse).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import entry as E
from . import events as ev
from .layout import MODE_SHADOW, SI_ADDR, SI_WRITE, STOP_SHADOW_FAULT
from .modes import Mode
from .snapshot import PathRow

if TYPE_CHECKING:
    from .guest_os import Process

LINK = E.P | E.RW | E.US | E.A  # a non-leaf shadow entry; rights are enforced at the leaf


@dataclass(eq=False)
class ShadowPage:
    frame: int  # host frame of the shadow table page
    gfn: int  # guest table frame it shadows (direct pages: first guest frame of the region)
    level: int
    direct: bool = False  # shadows part of a guest large page, not a guest table
    # role.access: the rights (RW, US) the guest grants above this page; for a direct page, the
    # large leaf's own too, less RW while the leaf is clean (FNAME(gpte_access), protect_clean_gpte).
    # Two mappings with different rights never share a page: a forked child's read-only view of a
    # large page must not reach the parent's writable entries.
    access: int = E.RW | E.US
    unsync: bool = False
    flood: int = 0  # emulated writes since the hypervisor last used the page
    parents: set = field(default_factory=set)  # {(parent ShadowPage, index)}
    children: dict = field(default_factory=dict)  # index -> child ShadowPage


class Shadow(Mode):
    name = "shadow"
    code = MODE_SHADOW
    vpid = 1
    virtualized = True

    def attach(self, machine) -> None:
        super().attach(machine)
        cfg = machine.config
        self.cost = {k: cfg[f"cost.{k}_handler"] for k in ("shadow_fill", "pt_write", "cr3", "invlpg", "inject", "dirty")}
        self.unsync_enabled = cfg["shadow.unsync"]
        self.flooding = cfg["shadow.flooding"]
        self.flood_threshold = cfg["shadow.flood_threshold"]
        guest_pages = cfg["guest.mem_gib"] << 18
        self.max_pages = cfg["shadow.max_pages"] or max(64, guest_pages // 50)  # KVM: 2 % of memslot pages
        self.host_size = E.size_code(cfg["host.page"])
        self.levels = cfg["guest.levels"]
        self.pages: dict[tuple[int, int, bool, int], ShadowPage] = {}  # insertion order = age, for recycling
        self.by_gfn: dict[int, list[ShadowPage]] = {}  # guest table frame -> its (non-direct) shadow pages
        self.roots: dict[int, ShadowPage] = {}  # guest CR3 frame -> root shadow page
        self.current_root: ShadowPage | None = None

    # --- shadow pages --------------------------------------------------------------------------
    @property
    def hmem(self):
        return self.m.host.mem

    def _get_page(self, gfn: int, level: int, direct: bool, access: int) -> ShadowPage:
        """The shadow page of this guest frame and role, made on a miss (kvm_mmu_get_shadow_page)."""
        key = (gfn, level, direct, access)
        sp = self.pages.get(key)
        if sp is not None:
            return sp
        self.m.count("mmu_cache_miss")
        if len(self.pages) >= self.max_pages:
            self._recycle()
        sp = ShadowPage(self.hmem.alloc_table(), gfn, level, direct, access=access)
        self.pages[key] = sp
        if not direct:
            self.by_gfn.setdefault(gfn, []).append(sp)
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
        old_child = sp.children.pop(index, None)
        if old_child is not None:
            old_child.parents.discard((sp, index))
        self.hmem.write(sp.frame, index, value)

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
        for cr3, root in list(self.roots.items()):
            if root is sp:
                del self.roots[cr3]
        if sp is self.current_root:
            self.current_root = None
        self.hmem.free_table(sp.frame)
        self._flush_hw()
        self.m.note(ev.ShadowSync(why, 0, sp.gfn, sp.level))

    def _flush_hw(self) -> None:
        """KVM flushes the vCPU's TLB after zapping present SPTEs (kvm_flush_remote_tlbs)."""
        self.m.mmu.flush_vpid(self.vpid)

    # --- the guest's privileged actions ------------------------------------------------------------
    def pte_write(self, table: int, index: int, old: int, new: int) -> None:
        pages = self.by_gfn.get(table)
        if not pages or not self.write_protected(table):
            return  # not shadowed, or unsync: a plain store
        leaf_pages = [sp for sp in pages if sp.level == 1]
        if self.unsync_enabled and leaf_pages and len(leaf_pages) == len(pages):
            # KVM mmu_try_to_unsync_pages: one exit, then the page is writable until the next resync
            self.m.exit("pt_write", self.cost["pt_write"], f"unsync gPT {table << 12:#x}")
            for sp in pages:
                sp.unsync = True
                self.m.count("mmu_unsync")
                self.m.note(ev.ShadowSync("unsync", 0, table, sp.level))
            return
        self.m.exit("pt_write", self.cost["pt_write"], f"gPT {table << 12:#x}[{index}]")
        self.m.count("mmu_pte_write")
        for sp in list(pages):
            if self.flooding and sp.level > 1:
                sp.flood += 1
                if sp.flood >= self.flood_threshold:
                    self.m.count("mmu_flooded")
                    self._zap(sp, "flood-zap")
                    continue
            was = self.hmem.read(sp.frame, index)
            if was & E.P:
                self._set(sp, index, 0)  # current KVM zaps the SPTE rather than prefetching the new one
                self._flush_hw()
            self.m.note(ev.ShadowSync("emulate", 0, table, sp.level))

    def table_freed(self, table: int) -> None:
        for sp in list(self.by_gfn.get(table, ())):
            self._zap(sp, "zap")

    def load_cr3(self, proc: Process, flush: bool = False) -> None:
        """mov cr3 exits: switch to (or build) the shadow root and resync unsync pages. A load that flushes
        (no PCID, or a fresh address space) is also a TLB flush (kvm_vcpu_flush_tlb_current, tlb_flush++)."""
        m = self.m
        root = self._root_for(proc.root)
        m.exit("cr3_write", self.cost["cr3"], f"gCR3 {proc.root << 12:#x}")
        self._sync_all()
        self.enter(proc, root.frame)
        if flush:
            m.count("tlb_flush")
            m.mmu.flush_asid(self.asid(proc), keep_global=True)
            m.note(ev.Flush("asid", self.asid(proc)))

    def _root_for(self, gcr3: int) -> ShadowPage:
        root = self.roots.get(gcr3)
        if root is None:
            root = self._get_page(gcr3, self.levels, False, E.RW | E.US)
            self.roots[gcr3] = root
            self.m.note(ev.ShadowSync("root", 0, gcr3, self.levels))
        self.current_root = root
        return root

    def invlpg(self, proc: Process, va: int) -> None:
        """INVLPG exits: drop the shadow translation of va (syncing an unsync leaf page) and the TLB's."""
        self.m.exit("invlpg", self.cost["invlpg"], f"{va:#x}")
        self.m.count("invlpg")
        root = self.roots.get(proc.root)
        if root is not None:
            sp, level = root, self.levels
            while True:
                index = E.index_at(va, level)
                child = sp.children.get(index)
                if child is None:
                    if self.hmem.read(sp.frame, index) & E.P:
                        self._set(sp, index, 0)
                    if sp.unsync:
                        self._sync(sp)
                    break
                sp, level = child, level - 1
        self.m.mmu.invlpg(va, self.asid(proc))
        self.m.note(ev.Flush("invlpg", va))

    def flush_tlb(self, proc: Process) -> None:
        """A guest TLB flush is a CR3 reload: it exits and resyncs every unsync page (kvm_mmu_sync_roots)."""
        self.m.exit("cr3_write", self.cost["cr3"], "TLB flush")
        self.m.count("tlb_flush")
        self._sync_all()
        self.m.mmu.flush_asid(self.asid(proc), keep_global=True)
        self.m.note(ev.Flush("asid", self.asid(proc)))

    def _sync_all(self) -> None:
        for sp in list(self.pages.values()):
            if sp.unsync:
                self._sync(sp)

    def _sync(self, sp: ShadowPage) -> None:
        """Resync an unsync leaf page: drop every shadow entry its guest entry no longer backs."""
        gmem = self.m.gmem
        changed = False
        if gmem.is_table(sp.gfn):
            guest = gmem.table(sp.gfn)
            for index in self.hmem.table(sp.frame).nonzero()[0]:
                index = int(index)
                s = self.hmem.read(sp.frame, index)
                g = int(guest[index])
                ok = g & E.P and E.frame_of(s) == self.m.host.placement(E.frame_of(g)) and (
                    not s & E.RW or (g & E.RW and g & E.D))
                if not ok:
                    self._set(sp, index, 0)
                    changed = True
        sp.unsync = False
        if changed:
            self._flush_hw()
        self.m.note(ev.ShadowSync("resync", 0, sp.gfn, sp.level))

    # --- faults -------------------------------------------------------------------------------------
    def handle(self, code: int, stop) -> None:
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
            m.exit("guest_pf_inject", self.cost["inject"], f"#PF {va:#x}")
            m.count("pf_guest")
            self._back_tables(path)
            m.guest_page_fault(stop)  # the guest kernel handles it as it would natively
            return
        if write and not leaf.value & E.D:
            # A/D emulation: the guest's D bit is set by the hypervisor, the shadow leaf made writable
            m.exit("dirty_track", self.cost["dirty"], f"{va:#x}")
            leaf = leaf._replace(value=leaf.value | E.D | E.A)
        else:
            m.exit("shadow_fault", self.cost["shadow_fill"], f"{va:#x}")
            m.count("pf_fixed")
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
        """Build the shadow path for va from the guest path (a hidden fault's fix-up, FNAME(fetch))."""
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
        flags = E.P | E.A | rights | (leaf.value & (E.G | E.NX))
        if tsize:
            flags |= E.PS
        self._set(sp, E.index_at(va, level), E.make(self.m.host.placement(gfn), flags))
        self.m.note(ev.ShadowSync("fill", va, path[-1].table, level))

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
