"""One simulated machine in one mode: hardware arrays, guest OS, host, counters.

``run`` is the batch path (counters only); ``step`` runs one op and returns
its full event list. Both drive the same compiled kernel and the same
software handlers, so they give the same counters.
"""

from __future__ import annotations

import numpy as np

from ..workloads import ops as O
from . import entry as E
from . import events as ev
from .config import Config
from .counters import GAUGES, INDEX, N_COUNTERS, as_dict
from .errors import EngineError
from .fast_fault import count_exit
from .guest_os import GuestOS
from .host import Host
from . import hardware
from .layout import (
    MAX_EVENTS,
    N_EVF,
    N_STATE,
    N_STOP,
    SI_ADDR,
    SI_CODE,
    SI_INDEX,
    SI_PRESENT,
    SI_WRITE,
    ST_CACHE_ON,
    ST_DATA_CACHE,
    ST_FAST_MISS,
    ST_EV_N,
    ST_EV_ON,
    ST_G_BASE,
    ST_GLEVELS,
    ST_H_BASE,
    ST_HLEVELS,
    ST_HOST_SIZE,
    ST_MODE,
    ST_NROOT,
    ST_PID,
    ST_ROOT,
    STOP_DONE,
    STOP_OSOP,
    STOP_PID,
    SW_COST_CLEAR,
    SW_COST_COPY,
    SW_COST_PF,
    SW_COST_PTE,
    SW_MAX_PAGE,
    SW_FAST,
    SW_GCR3,
    SW_NOTED_EXIT,
    SW_NOTED_FLUSH,
    SW_NOTED_GUEST_FAULT,
    SW_NOTED_SHADOW_SYNC,
    SW_VM_EXIT,
    SW_ZERO_FRAME,
    N_SW,
)
from .mmu import MMU
from .modes import Mode, Native, Nested
from .physmem import PhysicalMemory
from .shadow import Shadow
from .snapshot import MachineSnapshot, path_rows, tlb_views

MAX_RETRIES = 16  # faults one access may take before it is a bug, not a workload
NO_VMAS = np.zeros((0, 3), dtype=np.int64)
# software events the fast fault path counts (fast_fault.py), by the event class they stand for
FAST_NOTES = ((SW_NOTED_EXIT, "Exit"), (SW_NOTED_GUEST_FAULT, "GuestFault"), (SW_NOTED_SHADOW_SYNC, "ShadowSync"),
              (SW_NOTED_FLUSH, "Flush"))


def make_mode(name: str) -> Mode:
    modes = {"native": Native, "nested": Nested, "shadow": Shadow}
    if name not in modes:
        raise EngineError(f"unknown mode '{name}' (known: native, shadow, nested)")
    return modes[name]()


class Machine:
    def __init__(self, mode: str, config: Config):
        self.config = config
        self.mode = make_mode(mode)
        self.name = self.mode.name
        self.cnt = np.zeros(N_COUNTERS, dtype=np.int64)
        self.cnt_before_reset = np.zeros(N_COUNTERS, dtype=np.int64)  # what resets of cnt took away (a warm-up)
        self.noted: dict[str, int] = {}  # software events so far by kind (ShadowSync, Flush, ...), stepped or not
        self.mmu = MMU(config)
        # the software state the fast fault path shares with the handlers (layout.SW_*; each owner fills its own)
        self.sw = np.zeros(N_SW, dtype=np.int64)
        self.sw[SW_FAST] = 1
        self.sw[SW_VM_EXIT] = config["cost.vm_exit"]
        guest_frames = config["guest.mem_gib"] << 18
        host_size = E.size_code(config["host.page"])
        self.host = Host(guest_frames, host_size, config["host.levels"], with_nested_table=self.name == "nested")
        self.gmem = PhysicalMemory("guest", guest_frames)
        st = np.zeros(N_STATE, dtype=np.int64)
        st[ST_MODE] = self.mode.code
        st[ST_GLEVELS] = config["guest.levels"]
        st[ST_HLEVELS] = config["host.levels"]
        st[ST_HOST_SIZE] = host_size if self.name == "nested" else 0
        st[ST_NROOT] = self.host.nested.root if self.host.nested else 0
        st[ST_G_BASE] = self.gmem.base
        st[ST_H_BASE] = self.host.mem.base
        st[ST_CACHE_ON] = 1 if config["cache.enabled"] else 0
        st[ST_DATA_CACHE] = 1 if config["cache.enabled"] and config["cache.data_accesses"] else 0
        st[ST_FAST_MISS] = 1
        self.st = st
        self.ev = np.zeros((MAX_EVENTS, N_EVF), dtype=np.int64)
        self.stop = np.zeros(N_STOP, dtype=np.int64)
        self._notes: list | None = None  # software events, collected while stepping
        self.ops_done = 0
        self.mode.attach(self)
        self.os = GuestOS(self.gmem, config["guest.levels"], E.size_code(config["guest.page"]),
                          config["guest.pcid"], self.mode, self.cnt, config)
        # what the fast fault path charges for the guest's same work, and the largest page it maps
        self.sw[[SW_COST_PF, SW_COST_PTE, SW_COST_CLEAR, SW_COST_COPY, SW_MAX_PAGE]] = (
            self.os.cost_pf, self.os.cost_pte, self.os.cost_clear, self.os.cost_copy, self.os.max_page)
        self.mode.load_cr3(self.os.current)

    # --- checkpoints (timeline.py): the event buffer is scratch, made anew on load -----------------
    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "ev"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.ev = np.zeros((MAX_EVENTS, N_EVF), dtype=np.int64)

    # --- software-side accounting (used by the modes and the guest OS) ------------------------
    def count(self, name: str, n: int = 1) -> None:
        self.cnt[INDEX[name]] += n

    def note(self, kind: type, *fields) -> None:
        """A software event of class `kind` (events.py): counted, and made only when a step asks for events."""
        self.noted[kind.__name__] = self.noted.get(kind.__name__, 0) + 1
        if self._notes is not None:
            self._notes.append(kind(*fields))

    @property
    def fast_faults(self) -> bool:
        """Whether the batch path handles the common faults in compiled code (fast_fault.py); off, every fault
        goes to the Python handlers, which must give the same result (tested)."""
        return bool(self.sw[SW_FAST])

    @fast_faults.setter
    def fast_faults(self, on: bool) -> None:
        self.sw[SW_FAST] = 1 if on else 0

    @property
    def fast_misses(self) -> bool:
        """Whether the batch path serves TLB misses in a 4 KiB world by its own short path (fast_miss.py); off,
        every miss takes kernel.access, which must give the same result (tested)."""
        return bool(self.st[ST_FAST_MISS])

    @fast_misses.setter
    def fast_misses(self, on: bool) -> None:
        self.st[ST_FAST_MISS] = 1 if on else 0

    def reset_counters(self) -> None:
        """Forget the counts so far (the end of a warm-up), keeping the gauges' live values."""
        kept = {name: self.cnt[INDEX[name]] for name in GAUGES}
        self.cnt_before_reset += self.cnt
        self.cnt[:] = 0
        for name, value in kept.items():
            self.cnt[INDEX[name]] = value
            self.cnt_before_reset[INDEX[name]] = 0

    def exit(self, reason: str, handler_cycles: int, detail: str = "") -> None:
        """A VM exit: the round trip plus the hypervisor's handler."""
        trip = int(self.sw[SW_VM_EXIT])
        count_exit(self.cnt, INDEX["exit_" + reason], trip, handler_cycles)
        self.note(ev.Exit, reason, trip + handler_cycles, detail)

    def guest_page_fault(self, stop) -> None:
        va = int(stop[SI_ADDR])
        write = bool(stop[SI_WRITE])
        outcome = self.os.page_fault(va, write, bool(stop[SI_PRESENT]))
        self.note(ev.GuestFault, va, write, outcome)

    def placement(self, gpa: int) -> int:
        """Where guest-physical address gpa lives in host memory."""
        return (self.host.placement(gpa >> 12) << 12) | (gpa & 0xFFF)

    # --- driving ----------------------------------------------------------------------------------
    def _os_op(self, row) -> None:
        kind = int(row["kind"])
        pid = int(row["pid"])
        if kind == O.MMAP:
            flags = int(row["flags"])
            self.os.mmap(pid, int(row["addr"]), int(row["arg"]), bool(flags & O.MAP_WRITE), bool(flags & O.MAP_HUGE))
        elif kind == O.MUNMAP:
            self.os.munmap(pid, int(row["addr"]), int(row["arg"]))
        elif kind == O.FORK:
            self.os.fork(pid, int(row["arg"]))
        elif kind == O.EXEC:
            self.os.exec(pid)
        elif kind == O.EXIT:
            self.os.exit(pid)
        elif kind == O.SWITCH:
            self.os.switch(pid)
        else:
            raise EngineError(f"op kind {kind} is not a known op")
        if self.os.current is None:  # the running process exited: no address space is loaded
            self.st[ST_PID] = -1
        self.note(ev.OsOp, O.describe(row))

    def run(self, ops: np.ndarray, record: bool = False) -> list:
        """Run a chunk of ops. With record, return every event in order (the step path)."""
        ops = np.ascontiguousarray(ops)  # one compiled signature: a C-contiguous op array
        events: list = []
        self.st[ST_EV_ON] = 1 if record else 0
        self._notes = events if record else None
        n = len(ops)
        i = 0
        retries = 0
        last_fault = -1
        # compiled once it is ready (the build for this path and walk); the same source interpreted until then
        run_accesses = hardware.run_accesses(record, self.name == "nested")
        sw = self.sw
        try:
            while i < n:
                self.st[ST_EV_N] = 0
                self.mmu.flushed_vpid = None  # the kernel may fill entries
                vmas = self._fast_inputs()
                j = run_accesses(ops, i, n, self.gmem.tables, self.gmem.rows,
                                 self.host.mem.tables, self.host.mem.rows, self.mmu.geom, self.mmu.c, self.mmu.lru, self.st, self.mmu.cost, self.cnt, self.ev, self.stop,
                                 sw, vmas, self.gmem.pool, self.os.pages.cover(self.gmem.top),
                                 self.host.cover(self.gmem.top), self.mode.meta, self.mode.gfn_pages)
                if sw[SW_NOTED_EXIT] or sw[SW_NOTED_GUEST_FAULT] or sw[SW_NOTED_SHADOW_SYNC] or sw[SW_NOTED_FLUSH]:
                    self._take_fast_notes()
                if record:
                    events.extend(ev.decode(self.ev[: min(int(self.st[ST_EV_N]), MAX_EVENTS)], self.mmu.geom))
                code = int(self.stop[SI_CODE])
                self.ops_done += j - i
                if code == STOP_DONE:
                    break
                i = int(self.stop[SI_INDEX])
                if code == STOP_OSOP:
                    self._os_op(ops[i])
                    self.ops_done += 1
                    i += 1
                elif code == STOP_PID:
                    pid = int(ops["pid"][i])
                    if self.os.current is None or pid not in self.os.procs:
                        raise EngineError(f"op {self.ops_done}: access by pid {pid}, which does not exist")
                    self.os.switch(pid)
                else:
                    retries = retries + 1 if i == last_fault else 1
                    last_fault = i
                    if retries > MAX_RETRIES:
                        raise EngineError(f"op {self.ops_done}: access {int(ops['addr'][i]):#x} "
                                          f"keeps faulting ({retries} times); this is a simulator bug")
                    self.mode.handle(code, self.stop)
        finally:
            self._notes = None
            self.st[ST_EV_ON] = 0
        return events

    def _fast_inputs(self) -> np.ndarray:
        """Set what the fast fault path reads of the guest OS (its zero page, the current CR3); returns the
        current process's VMAs."""
        os_, sw = self.os, self.sw
        sw[SW_ZERO_FRAME] = -1 if os_.zero_frame is None else os_.zero_frame
        proc = os_.current
        if proc is None:
            return NO_VMAS
        sw[SW_GCR3] = proc.root
        return proc.vma_table

    def _take_fast_notes(self) -> None:
        """Add the software events the fast fault path counted to `noted`."""
        for slot, kind in FAST_NOTES:
            n = int(self.sw[slot])
            if n:
                self.noted[kind] = self.noted.get(kind, 0) + n
                self.sw[slot] = 0

    def step(self, op_row: np.ndarray) -> list:
        """One op (a length-1 op array) with its full event list."""
        return self.run(op_row, record=True)

    def counters(self) -> dict[str, int]:
        return as_dict(self.cnt)

    def snapshot(self, va: int) -> MachineSnapshot:
        """A read-only copy of what the UI shows, with table paths for va."""
        proc = self.os.current
        guest_path = path_rows(proc.table, va) if proc is not None else ()
        return MachineSnapshot(
            mode=self.name,
            ops_done=self.ops_done,
            pid=proc.pid if proc is not None else -1,
            cr3=int(self.st[ST_ROOT]),
            guest_cr3=proc.root if proc is not None else 0,
            vaddr=va,
            tlbs=tlb_views(self.mmu),
            guest_path=guest_path,
            second_paths=self.mode.second_paths(va, guest_path) if proc is not None else (),
            counters=self.counters(),
        )
