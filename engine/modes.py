"""Paging modes: what a TLB miss walks and what the guest's privileged actions cost.

A mode is the *platform* the guest OS runs on (see ``guest_os.Platform``) plus
the handler for the faults its hardware raises:

* native — the guest is the OS. Table writes are stores, CR3 loads and INVLPG
  act on the TLB directly, a miss walks the process table.
* nested (AMD RVI / Intel EPT) — guest table writes, CR3 loads and INVLPG do
  not exit (KVM clears CR3/INVLPG exiting and the #PF intercept with EPT,
  notes §4.2); the hypervisor runs only on a nested page fault, to back a
  guest page on first touch.
* shadow — see ``shadow.py``.

In both virtualized modes the host page behind a guest frame is allocated,
and charged ``cost.host_page_alloc``, inside the first fault that needs it
(``Mode.back_host_page``): the allocation is the same work in either; only the
fault it happens in differs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import entry as E
from . import events as ev
from .fast_fault import back_host_page
from .layout import (
    MODE_NATIVE,
    MODE_NESTED,
    N_META,
    SI_ADDR,
    ST_ASID,
    ST_PID,
    ST_ROOT,
    STOP_GUEST_FAULT,
    STOP_NPF,
    SW_COST_NPF,
    SW_HOST_ALLOC,
    SW_HOST_SIZE,
    SW_PLACE_MASK,
)
from .snapshot import path_rows

if TYPE_CHECKING:
    from .guest_os import Process
    from .machine import Machine


class Mode:
    name = ""
    code = -1
    vpid = 0
    virtualized = False

    def attach(self, machine: Machine) -> None:
        self.m = machine
        # what the fast fault path reads of the shadow pages (shadow.py fills them; empty in other modes)
        self.meta = np.zeros((1, N_META), dtype=np.int64)
        self.gfn_pages = np.zeros(1, dtype=np.int32)
        host, cfg, sw = machine.host, machine.config, machine.sw
        sw[SW_HOST_SIZE] = host.host_size
        sw[SW_PLACE_MASK] = host.placement.mask
        # the measured fault includes clearing 4 KiB; a 2 MiB or 1 GiB host page clears 512 or 262,144 times that
        sw[SW_HOST_ALLOC] = cfg["cost.host_page_alloc"] + cfg["cost.clear_4k"] * ((1 << (9 * host.host_size)) - 1)

    def asid(self, proc: Process) -> int:
        return (self.vpid << 12) | proc.pcid

    # --- the guest OS's privileged actions (guest_os.Platform) -------------------------------
    def pte_writes(self, table: int, indices: list[int], olds: list[int], news: list[int]) -> None:
        """Guest stores to one of its table pages: plain stores, unless the mode traps them."""

    def table_freed(self, table: int) -> None:
        pass

    def load_cr3(self, proc: Process, flush: bool = False) -> None:
        """mov cr3; with flush (a new address space's first load, Linux's switch_mm_irqs_off choosing a fresh
        ASID), the load also drops the PCID's TLB entries."""
        self.enter(proc, proc.root)
        if flush:
            self.m.mmu.flush_asid(self.asid(proc), keep_global=True)
            self.m.note(ev.Flush, "asid", self.asid(proc))

    def back_host_page(self, gfn: int) -> bool:
        """Allocate the host page behind guest frame gfn if it is not yet: KVM's kvm_faultin_pfn ->
        hva_to_pfn faults it into the VMM's address space inside whichever fault first needs the frame
        (a nested page fault, a shadow page fault or the shadow MMU's read of a guest table). Counted
        (host_page_allocs) and charged (cost.host_page_alloc, hypervisor cycles, plus clearing a large host
        page's bytes beyond the first 4 KiB: cost.clear_4k each) the same in every mode."""
        m = self.m
        return back_host_page(m.host.cover(gfn + 1), m.host.unit(gfn), m.cnt, int(m.sw[SW_HOST_ALLOC]))

    def enter(self, proc: Process, root: int) -> None:
        """Point the hardware at `root` for proc; without PCID the CR3 load flushes non-global entries."""
        m = self.m
        m.st[ST_ROOT] = root
        m.st[ST_ASID] = self.asid(proc)
        m.st[ST_PID] = proc.pid
        if not m.os.pcid_enabled:
            m.mmu.flush_asid(self.asid(proc), keep_global=True)
            m.note(ev.Flush, "asid", self.asid(proc))

    def invlpg(self, proc: Process, va: int) -> None:
        self.m.mmu.invlpg(va, self.asid(proc))
        self.m.note(ev.Flush, "invlpg", va)

    def flush_tlb(self, proc: Process) -> None:
        self.m.mmu.flush_asid(self.asid(proc), keep_global=True)
        self.m.note(ev.Flush, "asid", self.asid(proc))

    # --- what the UI's second pane shows ---------------------------------------------------------
    def second_paths(self, va: int, guest_path) -> tuple:
        """(label, rows) paths of the mode's second table for va; natively there is none."""
        return ()

    # --- faults the hardware hands over ----------------------------------------------------------
    def handle(self, code: int, stop) -> None:
        """Handle a stop of the kernel so that the faulting access can be retried."""
        if code == STOP_GUEST_FAULT:
            self.m.guest_page_fault(stop)
            return
        raise AssertionError(f"{self.name} mode cannot handle stop code {code}")


class Native(Mode):
    name = "native"
    code = MODE_NATIVE


class Nested(Mode):
    name = "nested"
    code = MODE_NESTED
    vpid = 1
    virtualized = True

    def attach(self, machine: Machine) -> None:
        super().attach(machine)
        machine.sw[SW_COST_NPF] = machine.config["cost.npf_handler"]

    def second_paths(self, va: int, guest_path) -> tuple:
        """The nested walk of every gPA the 2D walk of va translates: each guest table page, then the data page."""
        nested = self.m.host.nested
        paths = []
        for row in guest_path:
            paths.append((f"gL{row.level} table gPA {row.table << 12:#x}", path_rows(nested, row.table << 12)))
        last = guest_path[-1] if guest_path else None
        if last is not None and last.present and (last.level == 1 or last.value & E.PS):
            size = last.level - 1
            gpa = (last.frame << 12) | (va & (E.page_bytes(size) - 1))
            paths.append((f"data gPA {gpa:#x}", path_rows(nested, gpa)))
        return tuple(paths)

    def handle(self, code: int, stop) -> None:
        """A nested page fault (kvm_mmu_page_fault -> kvm_tdp_page_fault: pf_taken, and pf_fixed for the
        nested entry it installs): allocate the host page and map it in the nested table."""
        if code == STOP_NPF:
            m = self.m
            gfn = int(stop[SI_ADDR]) >> 12
            self.back_host_page(gfn)
            gpage, hpage = m.host.back(gfn)
            m.exit("npf", int(m.sw[SW_COST_NPF]), f"gPA {gpage << 12:#x} -> hPA {hpage << 12:#x}")
            m.count("pf_taken")
            m.count("pf_fixed")
            return
        super().handle(code, stop)
