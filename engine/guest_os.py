"""The guest operating system: processes, VMAs, demand paging, fork/COW, exec, exit, munmap, switch.

It turns each OS op into the page-table writes, TLB invalidations and CR3
loads a real kernel makes (Linux is the model), and calls its *platform* for
each of them. The platform is the mode: natively a table write is a store;
under shadow paging it traps to the hypervisor; under nested paging it is a
store again. The guest's own work (its fault handler, its per-op kernel work)
costs the same in every mode.

Linux rules the model follows, each cited where it is applied: a read fault on
anonymous memory maps the shared zero page (``do_anonymous_page``), a write
to it or to a shared page copies (``wp_page_copy``, which flushes the old
translation), a write to a copy-on-write page nobody else maps reuses it
without a flush (``wp_page_reuse``), and exec loads its new CR3 once.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from . import entry as E
from .counters import INDEX
from .errors import EngineError
from .fast_fault import COW, count_guest_fault, count_pte_write, demand_flags, leaf_entry, zero_page_flags
from .page_refs import PageRefs
from .pagetable import PathEntry, RadixTable
from .physmem import PhysicalMemory

FLUSH_CEILING = 33  # pages; past it munmap flushes the whole TLB (Linux tlb_single_page_flush_ceiling [U])


class Platform(Protocol):
    """What the guest kernel's privileged actions cost and do on the machine it runs on."""

    def pte_writes(self, table: int, indices: list[int], olds: list[int], news: list[int]) -> None: ...
    def table_freed(self, table: int) -> None: ...
    def load_cr3(self, proc: Process, flush: bool = False) -> None: ...
    def invlpg(self, proc: Process, va: int) -> None: ...
    def flush_tlb(self, proc: Process) -> None: ...


@dataclass
class Vma:
    start: int
    end: int
    writable: bool = True
    huge: bool = True
    implicit: bool = False  # created on demand for a trace address outside any mapping


@dataclass
class Process:
    pid: int
    table: RadixTable
    pcid: int
    vmas: list[Vma] = field(default_factory=list)  # sorted by start: change them through set_vmas / insert_vma

    def __post_init__(self) -> None:
        self.set_vmas(self.vmas)

    @property
    def root(self) -> int:
        return self.table.root

    def set_vmas(self, vmas: list[Vma]) -> None:
        """Replace the VMAs (sorted by start). Their starts are kept for lookups, and the (start, end, writable)
        rows the fast fault path reads (fast_fault.vma_writable)."""
        self.vmas = vmas
        self._starts = [v.start for v in vmas]
        self.vma_table = np.array([(v.start, v.end, v.writable) for v in vmas], dtype=np.int64).reshape(-1, 3)

    def insert_vma(self, vma: Vma) -> None:
        i = bisect.bisect_left(self._starts, vma.start)
        self.vmas.insert(i, vma)
        self._starts.insert(i, vma.start)
        self.vma_table = np.insert(self.vma_table, i, (vma.start, vma.end, vma.writable), axis=0)

    def vma_at(self, va: int) -> Vma | None:
        i = bisect.bisect_right(self._starts, va) - 1
        if i >= 0 and va < self.vmas[i].end:
            return self.vmas[i]
        return None

    def writable_at(self, vas: np.ndarray) -> np.ndarray:
        """Whether a writable VMA holds each address (vma_at on each, at once)."""
        if not len(self.vma_table):
            return np.zeros(len(vas), dtype=bool)
        i = np.searchsorted(self.vma_table[:, 0], vas, side="right") - 1
        row = self.vma_table[np.maximum(i, 0)]
        return (i >= 0) & (vas < row[:, 1]) & (row[:, 2] != 0)


class GuestOS:
    def __init__(self, mem: PhysicalMemory, levels: int, max_page: int, pcid: bool, platform: Platform,
                 counters, config):
        self.mem = mem
        self.levels = levels
        self.max_page = max_page  # largest page size code used for huge-capable VMAs
        self.pcid_enabled = pcid
        self.platform = platform
        self.cnt = counters
        # A fault's fixed work is guest_pf less the one 4 KiB clear that measurement included; the page it
        # prepares (cleared or copied, 4 KiB to 1 GiB) is charged by its size: see _prepare.
        self.cost_pf = config["cost.guest_pf"] - config["cost.clear_4k"]
        self.cost_clear = config["cost.clear_4k"]
        self.cost_copy = config["cost.copy_4k"]
        self.cost_pte = config["cost.guest_pte_write"]
        self.cost_op = config["cost.guest_os_op"]
        self.pages = PageRefs(mem)  # who maps which data pages (COW sharing, split large pages)
        # Linux's shared zero page (ZERO_PAGE, empty_zero_page): one frame, allocated on first use and never
        # freed; no process owns it, so PageRefs does not count it and no unmap releases it
        self.zero_frame: int | None = None
        self.procs: dict[int, Process] = {}
        self.current = self.spawn(1)

    # --- bookkeeping ------------------------------------------------------------------------
    def _count(self, name: str, n: int = 1) -> None:
        self.cnt[INDEX[name]] += n

    def _charge(self, cycles: int) -> None:
        self.cnt[INDEX["cyc_guest_os"]] += cycles

    def _prepare(self, size: int, copy: bool) -> None:
        """Charge clearing (clear_huge_page / clear_page) or copying (copy_user_large_folio / copy_page) a
        new page of this size: the work grows with its bytes, 512 times for 2 MiB (cost.clear_4k and
        cost.copy_4k are per 4 KiB, from a measured bandwidth; see the preset)."""
        self._charge((self.cost_copy if copy else self.cost_clear) << (9 * size))

    def _on_write(self, table: int, indices: list[int], olds: list[int], news: list[int]) -> None:
        count_pte_write(self.cnt, self.cost_pte, len(indices))
        self.platform.pte_writes(table, indices, olds, news)

    def spawn(self, pid: int) -> Process:
        if pid in self.procs:
            raise EngineError(f"process {pid} already exists")
        table = RadixTable(self.mem, self.levels, self._on_write)
        proc = Process(pid, table, pcid=(pid & 0xFFF) if self.pcid_enabled else 0)
        self.procs[pid] = proc
        return proc

    def proc(self, pid: int) -> Process:
        try:
            return self.procs[pid]
        except KeyError:
            raise EngineError(f"no process {pid} (ops must FORK a process before using it)") from None

    # --- page faults --------------------------------------------------------------------------
    def page_fault(self, va: int, write: bool, present: bool) -> str:
        """Handle a #PF of the current process at va; returns what it did ('demand', 'cow')."""
        count_guest_fault(self.cnt, self.cost_pf)
        proc = self.current
        if not E.is_canonical(va, self.levels):
            raise EngineError(f"address {va:#x} is not canonical for {self.levels}-level paging"
                              + (" (try --levels 5)" if self.levels == 4 else ""))
        vma = proc.vma_at(va) or self._implicit_vma(proc, va)
        last = proc.table.last(va)
        if not last.leaf:
            self._demand_map(proc, vma, va, write, last)
            return "demand"
        if write and not last.value & E.RW:
            if last.value & COW and vma.writable:
                self._cow(proc, va, last)
                return "cow"
            raise EngineError(f"pid {proc.pid}: write to read-only mapping at {va:#x} (segfault)")
        return "spurious"  # another walk raced ahead (cannot happen in one vCPU; kept for safety)

    def _implicit_vma(self, proc: Process, va: int) -> Vma:
        """Traces carry no mmaps: map the aligned block around va on demand, clipped to its neighbours."""
        block = E.page_bytes(max(self.max_page, 1))
        start, end = va & ~(block - 1), (va & ~(block - 1)) + block
        for v in proc.vmas:
            if v.end <= va:
                start = max(start, v.end)
            elif v.start > va:
                end = min(end, v.start)
        vma = Vma(start, end, writable=True, huge=True, implicit=True)
        self._insert_vma(proc, vma)
        return vma

    def _insert_vma(self, proc: Process, vma: Vma) -> None:
        proc.insert_vma(vma)

    def _page_size_for(self, vma: Vma, va: int, deepest: int) -> int:
        """The largest page inside the VMA with no smaller table under it yet (`deepest` = level of
        the first absent entry on va's path)."""
        if not vma.huge:
            return E.PAGE_4K
        for size in range(self.max_page, 0, -1):
            span = E.page_bytes(size)
            start = va & ~(span - 1)
            if start >= vma.start and start + span <= vma.end and deepest >= size + 1:
                return size
        return E.PAGE_4K

    def _demand_map(self, proc: Process, vma: Vma, va: int, write: bool, absent) -> None:
        """Map a fresh page; a write fault maps it accessed and dirty, as Linux's do_anonymous_page does.

        A read fault that would map a 4 KiB page maps the shared zero page instead, read-only and
        copy-on-write when the VMA is writable (do_anonymous_page: ``!(vmf->flags & FAULT_FLAG_WRITE)``
        -> my_zero_pfn, pte_mkspecial; no allocation). The first write then faults and copies it
        (wp_page_copy), which counts as a copy-on-write fault. Large pages are allocated as before (Linux's
        huge zero page is not modelled). `absent` is the first absent entry of va's path, where the mapping
        starts."""
        size = self._page_size_for(vma, va, absent.level)
        if not write and size == E.PAGE_4K:
            if self.zero_frame is None:
                self.zero_frame = self.mem.alloc(E.PAGE_4K)
            self._count("zero_page_maps")
            proc.table.map(va, self.zero_frame, size, zero_page_flags(vma.writable), absent)
            return
        frame = self.pages.alloc(size)
        self._prepare(size, copy=False)  # do_anonymous_page / do_huge_pmd_anonymous_page clear the page
        proc.table.map(va, frame, size, demand_flags(vma.writable, write), absent)

    def _counted(self, frames: np.ndarray) -> np.ndarray:
        """The frames whose mappings are reference-counted: all but the zero page, which is nobody's and stays."""
        return frames if self.zero_frame is None else frames[frames != self.zero_frame]

    def _release(self, frame: int, size: int) -> None:
        """One mapping of a data page gone; the zero page is nobody's and stays."""
        if frame != self.zero_frame:
            self.pages.release(frame, size)

    def _cow(self, proc: Process, va: int, last) -> None:
        """A write to a copy-on-write page: copy it if it is shared (or the zero page), else make it writable.

        Copy (wp_page_copy): a fresh page, mapped dirty; ptep_clear_flush drops the old translation, so the
        guest INVLPGs va. Reuse (wp_page_reuse, the page is exclusively this process's): the entry is made
        writable and dirty in place through ptep_set_access_flags, which on x86 does not flush: a stale
        read-only TLB entry only makes the CPU re-walk (or take a spurious fault) and find the new entry.

        A shared 2 MiB page is split first and only the 4 KiB page written is copied, as Linux has
        done since 5.8 ("thp: change CoW semantics for anon-THP"); a 1 GiB page is a hugetlbfs page
        there, copied whole."""
        self._count("cow_faults")
        frame, size = E.frame_of(last.value), last.level - 1
        if size == E.PAGE_2M and self.pages.shared(frame, size):
            self._split(proc, va & ~(E.page_bytes(size) - 1), last)
            last = proc.table.last(va)
            frame, size = E.frame_of(last.value), last.level - 1
        leaf = last.value
        copy = frame == self.zero_frame or self.pages.shared(frame, size)
        if copy:
            self._prepare(size, copy=frame != self.zero_frame)  # wp_page_copy: a zeroed page for the zero page
            self._release(frame, size)
            frame = self.pages.alloc(size)
        flags = (leaf & ~E.ADDR_MASK & ~COW) | E.RW | E.A | E.D  # both map the page dirty
        proc.table.write_entry(last.table, last.index, E.make(frame, flags))
        if copy:
            self.platform.invlpg(proc, va)
            self._count("guest_invlpgs")

    # --- OS ops --------------------------------------------------------------------------------
    def switch(self, pid: int) -> None:
        """Context switch: load the process's CR3 (PCID keeps the other TLB entries)."""
        proc = self.proc(pid)
        if proc is self.current:
            return
        self._count("ctx_switches")
        self._charge(self.cost_op)
        self.current = proc
        self.platform.load_cr3(proc)

    def mmap(self, pid: int, start: int, length: int, writable: bool, huge: bool) -> None:
        self._count("mmaps")
        self._charge(self.cost_op)
        proc = self.proc(pid)
        start &= ~0xFFF
        end = (start + length + 0xFFF) & ~0xFFF
        if not E.is_canonical(start, self.levels) or not E.is_canonical(max(start, end - 1), self.levels):
            raise EngineError(f"mmap {start:#x}+{length:#x} is not canonical for {self.levels}-level paging")
        self._unmap_range(proc, start, end)  # MAP_FIXED semantics: replace what was there
        self._insert_vma(proc, Vma(start, end, writable, huge))

    def munmap(self, pid: int, start: int, length: int) -> None:
        self._count("munmaps")
        self._charge(self.cost_op)
        proc = self.proc(pid)
        start &= ~0xFFF
        self._unmap_range(proc, start, (start + length + 0xFFF) & ~0xFFF)

    def _unmap_range(self, proc: Process, start: int, end: int) -> None:
        kept = []
        for v in proc.vmas:
            if v.end <= start or v.start >= end:
                kept.append(v)
                continue
            if v.start < start:
                kept.append(Vma(v.start, start, v.writable, v.huge, v.implicit))
            if v.end > end:
                kept.append(Vma(end, v.end, v.writable, v.huge, v.implicit))
        proc.set_vmas(sorted(kept, key=lambda v: v.start))
        while True:  # a large page partly unmapped is split first (Linux: split_huge_pmd), to the size needed
            runs = proc.table.leaf_runs(start, end)
            partial = next(((int(va), PathEntry(run.level, run.table, int(index), int(value)))
                            for run in runs if run.level > 1
                            for va, index, value in zip(run.vas, run.indices, run.values)
                            if va < start or va + E.page_bytes(run.level - 1) > end), None)
            if partial is None:
                break
            self._split(proc, *partial)
        cleared = self._clear(proc, runs)
        self._free_empty_tables(proc, start, end)
        if not cleared:
            return
        if len(cleared) > FLUSH_CEILING:
            self.platform.flush_tlb(proc)
            self._count("guest_tlb_flushes")
        else:
            for va in cleared:
                self.platform.invlpg(proc, va)
            self._count("guest_invlpgs", len(cleared))

    def _split(self, proc: Process, va: int, leaf) -> None:
        """Replace a large leaf by a table of next-smaller pages mapping the same frames."""
        size = leaf.level - 1
        frame = E.frame_of(leaf.value)
        flags = leaf.value & ~E.ADDR_MASK & ~E.PS
        child = self.mem.alloc_table()
        step = 1 << (9 * (size - 1))
        small_flags = flags | (E.PS if size - 1 else 0)
        self.pages.split(frame, size)
        for i in range(512):
            proc.table.write_entry(child, i, E.make(frame + i * step, small_flags))
        proc.table.write_entry(leaf.table, leaf.index, E.make(child, E.P | E.RW | E.US))
        self.platform.invlpg(proc, va)
        self._count("guest_invlpgs")

    def _free_empty_tables(self, proc: Process, start: int, end: int) -> None:
        """Free table pages left empty by unmapping [start, end) (Linux free_pgtables), clearing their parent
        entries."""
        for table, _level, parent in proc.table.tables(start, end):
            if parent is None or self.mem.table(table).any():
                continue
            proc.table.write_entry(parent[0], parent[1], 0)
            self.platform.table_freed(table)
            self.mem.free_table(table)

    def fork(self, parent_pid: int, child_pid: int) -> None:
        """Copy the address space copy-on-write: every writable page becomes read-only in both."""
        self._count("forks")
        self._charge(self.cost_op)
        parent = self.proc(parent_pid)
        child = self.spawn(child_pid)
        child.set_vmas([Vma(v.start, v.end, v.writable, v.huge, v.implicit) for v in parent.vmas])
        copies: dict[int, int] = {}  # a parent table page -> the child's at the same place, once it has one
        # a table page at a time (a run of leaves in one page): the parent's stores, then the child's; only the
        # child's first store in a page it has no copy of yet allocates, in the same order as leaf by leaf
        for run in parent.table.leaf_runs():
            values = run.values
            writable = (values & E.RW) != 0
            values = np.where(writable, (values & ~E.RW) | COW, values)
            maybe = ~writable & ((values & COW) == 0)  # read-only: copy-on-write too where the VMA is writable
            if maybe.any():
                values[maybe] |= np.where(parent.writable_at(run.vas[maybe]), COW, 0)
            parent.table.write_entries(run.table, run.indices, values)
            frames, size = (values & E.ADDR_MASK) >> E.PAGE_SHIFT, run.level - 1
            self.pages.share_many(self._counted(frames), size)  # copy_present_pte: not the zero page
            flags = values & ~E.ADDR_MASK & ~E.P & ~E.PS & ~E.A & ~E.D
            rest = 0
            if run.table not in copies:
                copies[run.table] = child.table.map(int(run.vas[0]), int(frames[0]), size, int(flags[0]))
                rest = 1
            child.table.write_entries(copies[run.table], run.indices[rest:],
                                      leaf_entry(frames[rest:], size, flags[rest:]))
        self.platform.flush_tlb(parent)  # the parent's writable translations are stale now
        self._count("guest_tlb_flushes")

    def _clear(self, proc: Process, runs: list) -> list[int]:
        """Clear these leaf runs of proc's table (pagetable.LeafRun) and release their pages; returns their
        addresses. The stores go a table page at a time, each page's releases after them: releasing touches
        no table."""
        for run in runs:
            proc.table.write_entries(run.table, run.indices, np.zeros(len(run.indices), dtype=np.int64))
            self.pages.release_many(self._counted((run.values & E.ADDR_MASK) >> E.PAGE_SHIFT), run.level - 1)
        return np.concatenate([run.vas for run in runs]).tolist() if runs else []

    def _destroy_space(self, proc: Process) -> None:
        """Unmap everything and free every table page, the root too (exit_mmap + free_pgtables)."""
        self._clear(proc, proc.table.leaf_runs())
        for table, _level, _parent in proc.table.tables():
            self.platform.table_freed(table)
            self.mem.free_table(table)
        proc.set_vmas([])

    def exec(self, pid: int) -> None:
        """Replace the address space with an empty one (a new root, so a new CR3).

        Linux writes CR3 once: exec_mmap -> switch_mm_irqs_off loads the new mm's root under a fresh ASID,
        which flushes that PCID's old entries in the same CR3 write. A process that is not running gets its
        flush without a load (at its next switch in Linux; here at once, as a TLB flush)."""
        self._count("execs")
        self._charge(self.cost_op)
        proc = self.proc(pid)
        self._destroy_space(proc)
        proc.table = RadixTable(self.mem, self.levels, self._on_write)
        if proc is self.current:
            self.platform.load_cr3(proc, flush=True)
        else:
            self.platform.flush_tlb(proc)

    def exit(self, pid: int) -> None:
        self._count("proc_exits")
        self._charge(self.cost_op)
        proc = self.proc(pid)
        self._destroy_space(proc)
        self.platform.flush_tlb(proc)
        del self.procs[pid]
        if proc is self.current:
            self.current = None
