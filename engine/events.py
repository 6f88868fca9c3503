"""Events of the step path: what happened during one op, in order.

The compiled kernel records hardware events as int64 rows (no objects in the
hot loop); ``decode`` turns them into these frozen dataclasses. Software
events (exits, guest faults, shadow-sync actions, OS ops) are made directly
by the guest OS and the hypervisor when a step asks for events.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import layout as L
from .setassoc import position


@dataclass(frozen=True)
class TlbLookup:
    struct: str  # "L1 4K" ... "L2"; for a miss, the level that missed
    hit: bool
    set: int
    way: int
    vpn: int
    size: int


@dataclass(frozen=True)
class TlbFill:
    struct: str
    set: int
    way: int
    vpn: int
    size: int
    evicted_vpn: int  # -1: the way was empty or held the same page


@dataclass(frozen=True)
class WalkRef:
    """One memory reference of a walk: grid cell (row, col) and where it was served."""

    dim: str  # guest | nested | shadow
    row: int  # guest level of the row (0 = the data page's nested walk)
    col: int  # nested level (0 = the guest/first-dimension entry read)
    paddr: int
    served: str  # L1D | L2$ | L3$ | DRAM | mem
    entry: int


@dataclass(frozen=True)
class WalkSkip:
    """Grid cell(s) a walk cache served without a memory reference."""

    dim: str
    row: int
    col: int  # 0 for a guest-dimension level or a whole nested row (NTLB)
    by: str  # PWC Lx | NWC Lx | NTLB


@dataclass(frozen=True)
class HwFault:
    """The hardware handing over to software."""

    kind: str  # guest-fault | npf | shadow-fault
    addr: int
    level: int
    write: bool
    present: bool


@dataclass(frozen=True)
class Translated:
    paddr: int
    size: int
    via: str  # L1 | L2 | walk


@dataclass(frozen=True)
class DirtyAssist:
    """A write hit a clean or read-only TLB entry: the processor re-walks to set D."""


@dataclass(frozen=True)
class Exit:
    reason: str  # npf | cr3_write | invlpg | pt_write | shadow_fault | guest_pf_inject | dirty_track
    cycles: int
    detail: str = ""


@dataclass(frozen=True)
class GuestFault:
    addr: int
    write: bool
    outcome: str  # demand | cow | spurious


@dataclass(frozen=True)
class ShadowSync:
    action: str  # fill | emulate | unsync | resync | zap | flood-zap | root | recycle
    gva: int
    table: int  # guest table frame involved
    level: int = 0


@dataclass(frozen=True)
class OsOp:
    text: str


@dataclass(frozen=True)
class Flush:
    what: str  # invlpg | asid | vpid | nested
    addr: int = 0


_VIA = ("L1", "L2", "walk")


def decode(rows, geom) -> list:
    """Kernel event rows -> event objects (geom turns slot offsets into set and way)."""
    out = []
    for row in rows:
        kind, a, b, c, d, e, f = (int(x) for x in row[:7])
        if kind == L.EV_TLB:
            out.append(TlbLookup(L.STRUCT_NAMES[a], bool(b), *position(geom, a, c), d, e))
        elif kind == L.EV_TLB_FILL:
            out.append(TlbFill(L.STRUCT_NAMES[a], *position(geom, a, b), c, d, e))
        elif kind == L.EV_REF:
            out.append(WalkRef(L.DIM_NAMES[a], b, c, d, L.SERVED_NAMES[e], f))
        elif kind == L.EV_SKIP:
            out.append(WalkSkip(L.DIM_NAMES[a], b, c, L.STRUCT_NAMES[d]))
        elif kind == L.EV_FAULT:
            out.append(HwFault(L.STOP_NAMES[a], b, c, bool(d), bool(e)))
        elif kind == L.EV_DONE:
            out.append(Translated(a, b, _VIA[c]))
        elif kind == L.EV_ASSIST:
            out.append(DirtyAssist())
    return out
