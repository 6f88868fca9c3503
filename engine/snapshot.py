"""Read-only snapshots of a machine for the UI: plain frozen data, no engine objects.

The UI never reaches into engine internals; it asks a session for a
``MachineSnapshot`` and draws it. Everything here is copied out, so a
snapshot stays valid while the engine runs on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import entry as E
from .layout import (
    S_L1_1G,
    S_L1_2M,
    S_L1_4K,
    S_L2,
    STRUCT_NAMES,
    TF_DIRTY,
    TF_GLOBAL,
    TF_SIZE_MASK,
    TF_WRITABLE,
)
from .setassoc import ASID, FLAGS, KEY, VAL, lru_ages


@dataclass(frozen=True)
class TlbEntry:
    struct: str
    set: int
    way: int
    vpn: int  # virtual page number at the entry's page size
    size: int  # page size code
    frame: int  # 4 KiB frame number of the page's base (hPA, or PA natively)
    pcid: int
    vpid: int
    writable: bool
    dirty: bool
    global_: bool
    age: int  # 0 = most recently used in its set

    @property
    def vaddr(self) -> int:
        return self.vpn << E.page_shift(self.size)


@dataclass(frozen=True)
class TlbView:
    struct: str
    capacity: int
    sets: int
    ways: int
    entries: tuple[TlbEntry, ...]


@dataclass(frozen=True)
class PathRow:
    """One entry of a table path, root first."""

    level: int
    table: int  # frame of the table page
    index: int
    value: int
    state: str = ""  # shadow mode: in-sync | unsync | write-protected guest page

    @property
    def present(self) -> bool:
        return bool(self.value & E.P)

    @property
    def frame(self) -> int:
        return E.frame_of(self.value)

    @property
    def flags(self) -> str:
        return E.flags_text(self.value)


@dataclass(frozen=True)
class MachineSnapshot:
    mode: str
    ops_done: int
    pid: int
    cr3: int  # frame of the root the hardware walks (guest CR3 natively and nested, shadow root in shadow mode)
    guest_cr3: int
    vaddr: int  # the address the paths are for (the last access)
    tlbs: tuple[TlbView, ...]
    guest_path: tuple[PathRow, ...]
    # nested: one nested path per gPA the 2D walk translates (label, rows); shadow: one path; native: none
    second_paths: tuple[tuple[str, tuple[PathRow, ...]], ...]
    counters: dict = field(default_factory=dict)


def tlb_views(mmu) -> tuple[TlbView, ...]:
    """Every valid TLB entry, in (set, way) order, with its LRU age inside its set (numpy does the ranking,
    so a 3,072-entry L2 costs a few milliseconds, not tens)."""
    views = []
    for s in (S_L1_4K, S_L1_2M, S_L1_1G, S_L2):
        _, sets, ways = (int(x) for x in mmu.geom[s, :3])
        v = mmu.views[s]
        valid = v[KEY] != -1
        age = lru_ages(mmu.geom, mmu.c, s)
        name = STRUCT_NAMES[s]
        out = tuple(
            TlbEntry(name, i, w, key >> 2, flags & TF_SIZE_MASK, val, asid & 0xFFF, asid >> 12,
                     bool(flags & TF_WRITABLE), bool(flags & TF_DIRTY), bool(flags & TF_GLOBAL), a)
            for i, w, key, asid, val, flags, a in zip(
                *(ix.tolist() for ix in np.nonzero(valid)), *(v[f][valid].tolist() for f in (KEY, ASID, VAL, FLAGS)),
                age[valid].tolist())
        )
        views.append(TlbView(name, sets * ways, sets, ways, out))
    return tuple(views)


def path_rows(table, va: int, state=None) -> tuple[PathRow, ...]:
    """The path a software walk of `table` reads for va (state(level, table, index) labels shadow rows)."""
    return tuple(PathRow(p.level, p.table, p.index, p.value, state(p) if state else "") for p in table.walk(va))
