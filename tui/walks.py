"""The walk of a TLB miss as a grid: pure functions over one op's event list.

One op's events may hold several walks: a walk that ends in a fault (a
``HwFault``) is retried after the guest OS or the hypervisor has fixed things,
and a write to a clean TLB entry re-walks to set D (``DirtyAssist``). The grid
shows the *last completed* walk; the faulted attempts before it are counted
(the event log lists them).

Grid coordinates are the engine's: ``row`` = guest level n..1 then 0 for the
data page, ``col`` = nested level m..1 then 0 for the guest-entry read. A 1-D
walk (native, shadow) uses rows n..1 and col 0 only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Events are told apart by class name, so this module (and the UI that imports it) does not import
# the engine's event module, which loads numba: the first frame must not wait for that.
REF, SKIP, FAULT, FILL, DONE, ASSIST, LOOKUP = ("WalkRef", "WalkSkip", "HwFault", "TlbFill", "Translated",
                                                 "DirtyAssist", "TlbLookup")


def kind(e) -> str:
    return type(e).__name__


SERVED_ORDER = ("L1D", "L2$", "L3$", "DRAM", "mem")
# The nested level that maps a host page: a nested walk ends there (no nL1 with 2 MiB host pages, no nL2 with 1 GiB)
HOST_LEAF_LEVEL = {"4k": 1, "2m": 2, "1g": 3}
SERVED_COST_KEYS = {"L1D": "cost.ref_l1d", "L2$": "cost.ref_l2", "L3$": "cost.ref_l3", "DRAM": "cost.ref_dram",
                    "mem": "cost.ref_flat"}


@dataclass(frozen=True)
class Cell:
    """One grid cell: a numbered memory reference, or a reference a walk cache saved."""

    kind: str  # "ref" | "skip" | "implied" (a row made unnecessary by a guest PWC hit)
    num: int = 0  # walk order, 1-based (refs only)
    served: str = ""  # L1D | L2$ | L3$ | DRAM | mem (refs)
    by: str = ""  # PWC Lx | NWC Lx | NTLB (skips)
    paddr: int = 0
    entry: int = 0


@dataclass(frozen=True)
class Attempt:
    """One walk: its references and skips in order, and how it ended."""

    items: tuple
    fault: object | None = None  # the HwFault that ended it, if any
    assist: bool = False  # a D-bit assist re-walk

    @property
    def refs(self) -> int:
        return sum(1 for x in self.items if kind(x) == REF)


@dataclass(frozen=True)
class WalkView:
    """What the walk-grid pane draws."""

    mode: str
    op_index: int  # 1-based index of the op in the stream
    op_text: str
    vaddr: int  # the address walked (the op's address)
    two_d: bool
    rows: tuple[int, ...]  # row ids top to bottom
    cols: tuple[int, ...]  # col ids left to right
    cells: dict = field(default_factory=dict)  # (row, col) -> Cell
    refs: int = 0
    served: dict = field(default_factory=dict)  # served -> count
    skipped: dict = field(default_factory=dict)  # walk cache -> references saved (saved_refs)
    faulted: tuple = ()  # HwFault of each faulted attempt of the same op
    assist: bool = False
    cycles: int = 0  # walk cycles from the config's costs
    result: object | None = None  # the Translated event
    dims: tuple[str, ...] = ()


def split_walks(events) -> list[Attempt]:
    """The walks in one op's events, in order."""
    out: list[Attempt] = []
    cur: list = []
    assist = False
    pending_assist = False
    for e in events:
        k = kind(e)
        if k in (REF, SKIP):
            if not cur:
                assist = pending_assist
                pending_assist = False
            cur.append(e)
        elif k == FAULT:
            out.append(Attempt(tuple(cur), e, assist))
            cur, assist = [], False
        elif k in (FILL, DONE):
            if cur:
                out.append(Attempt(tuple(cur), None, assist))
                cur, assist = [], False
        elif k == ASSIST:
            pending_assist = True
    if cur:
        out.append(Attempt(tuple(cur), None, assist))
    return out


def saved_refs(items, nested_walk: int) -> dict[str, int]:
    """The memory references a walk did not make, by the walk cache that spared them ("PWC", "NWC", "NTLB";
    the grid and the event log both say this): a guest or 1-D PWC hit spares its level's entry read and, in a
    2-D walk, the nested walk of that level's table; an NWC hit spares one nested reference; an NTLB hit a
    whole nested walk. ``nested_walk`` is the references of one nested walk (0 for a 1-D walk). A walk's
    references plus the ones saved are the references of the same walk made cold."""
    saved: dict[str, int] = {}
    in_row: dict[int, int] = {}  # nested cells made or saved, per row
    pwc_rows = []
    for x in items:
        if kind(x) == REF:
            if x.col:
                in_row[x.row] = in_row.get(x.row, 0) + 1
            continue
        cache = x.by.split()[0]
        if cache == "NTLB":
            n = nested_walk
            in_row[x.row] = in_row.get(x.row, 0) + nested_walk
        elif x.col:  # an NWC hit: one nested reference
            n = 1
            in_row[x.row] = in_row.get(x.row, 0) + 1
        else:  # a guest (or 1-D) PWC hit: the entry read; its nested walk is counted below
            n = 1
            pwc_rows.append(x.row)
        saved[cache] = saved.get(cache, 0) + n
    for row in pwc_rows:
        saved["PWC"] += max(0, nested_walk - in_row.get(row, 0))
    return saved


def walk_cycles(attempt: Attempt, costs: dict) -> int:
    """Cycles of one walk under the engine's cost model: each reference at the cost of where it was
    served, each walk-cache hit once (one lookup skips several cells)."""
    total = 0
    hits = set()
    for x in attempt.items:
        if kind(x) == REF:
            total += costs.get(x.served, 0)
        else:
            if x.by == "NTLB":
                hits.add(("NTLB", x.row))
            elif x.dim == "nested":
                hits.add((x.by, x.row))
            else:
                hits.add((x.by, "guest"))
    for by, _ in hits:
        total += costs.get("NTLB" if by == "NTLB" else "PWC", 0)
    return total


def costs_of(config) -> dict:
    c = {served: int(config[key]) for served, key in SERVED_COST_KEYS.items()}
    c["PWC"] = int(config["cost.pwc_hit"])
    c["NTLB"] = int(config["cost.ntlb_hit"])
    return c


def grid_shape(mode: str, glevels: int, hlevels: int, hleaf: int = 1) -> tuple[bool, tuple[int, ...], tuple[int, ...]]:
    """(2-D?, row ids, col ids). hleaf: the nested level that maps a host page (2 with 2 MiB host pages,
    whose nested walks end a level early: no nL1 column)."""
    if mode == "nested":
        return True, tuple(range(glevels, -1, -1)), tuple(range(hlevels, hleaf - 1, -1)) + (0,)
    return False, tuple(range(glevels, 0, -1)), (0,)


def build_view(mode: str, events, op_index: int, op_text: str, glevels: int, hlevels: int,
               costs: dict, vaddr: int = 0, hleaf: int = 1) -> WalkView | None:
    """The grid of the last completed walk in `events` (None if the op completed no walk)."""
    attempts = split_walks(events)
    done = [i for i, a in enumerate(attempts) if a.fault is None]
    if not done:
        return None
    last = attempts[done[-1]]
    faulted = tuple(a.fault for a in attempts[: done[-1]] if a.fault is not None)
    two_d, rows, cols = grid_shape(mode, glevels, hlevels, hleaf)
    cells: dict = {}
    served: dict = {}
    num = 0
    guest_skipped_rows = []
    dims = []
    for x in last.items:
        if x.dim not in dims:
            dims.append(x.dim)
        if kind(x) == REF:
            num += 1
            cells[(x.row, x.col)] = Cell("ref", num, x.served, "", x.paddr, x.entry)
            served[x.served] = served.get(x.served, 0) + 1
        elif x.by == "NTLB":
            for c in cols:
                if c:
                    cells[(x.row, c)] = Cell("skip", by="NTLB")
        else:
            cells[(x.row, x.col)] = Cell("skip", by=x.by)
            if two_d and x.dim == "guest":
                guest_skipped_rows.append((x.row, x.by))
    for row, by in guest_skipped_rows:  # the nested walks of those rows are not needed either
        for c in cols:
            if c and (row, c) not in cells:
                cells[(row, c)] = Cell("implied", by=by)
    result = None
    for e in events:
        if kind(e) == DONE:
            result = e
    skipped = saved_refs(last.items, len(cols) - 1 if two_d else 0)
    return WalkView(mode, op_index, op_text, vaddr, two_d, rows, cols, cells, num, served, skipped, faulted,
                    last.assist, walk_cycles(last, costs), result, tuple(dims))


def has_walk(events) -> bool:
    return any(kind(e) in (REF, SKIP) for e in events)


def tlb_marks(events) -> dict:
    """(struct, set, way) -> 'hit' | 'fill' | 'evict' for the TLB entries one op touched."""
    marks: dict = {}
    for e in events:
        k = kind(e)
        if k == LOOKUP and e.hit and e.set >= 0:
            marks[(e.struct, e.set, e.way)] = "hit"
        elif k == FILL and e.set >= 0:
            marks[(e.struct, e.set, e.way)] = "evict" if e.evicted_vpn >= 0 else "fill"
    return marks


def tlb_summary(events) -> str:
    """A one-line account of the op's TLB activity, e.g. 'L1 4K miss · L2 hit [95/3]'."""
    parts = []
    for e in events:
        k = kind(e)
        if k == LOOKUP:
            parts.append(f"{e.struct} hit [{e.set}/{e.way}]" if e.hit else f"{e.struct} miss")
        elif k == FILL:
            text = f"fill {e.struct} [{e.set}/{e.way}]"
            if e.evicted_vpn >= 0:
                text += f" evicting vpn {e.evicted_vpn:#x}"
            parts.append(text)
    # a faulted walk repeats the lookups: keep the last round only
    out: list[str] = []
    for p in parts:
        if out and p == out[0] and "miss" in p:
            out = []
        out.append(p)
    return " · ".join(out)
