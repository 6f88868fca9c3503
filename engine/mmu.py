"""The MMU's state: TLBs, walk caches and data caches of one machine, and their invalidation.

Geometry comes from the config; the arrays are what the compiled kernel
reads. Invalidations are what software asks of the hardware (INVLPG, a CR3
load without PCID, INVPCID, INVEPT) and run here in numpy: they are rare.
"""

from __future__ import annotations

import numpy as np

from . import entry as E
from .config import Config
from .fast_fault import drop_if_page_4k, pcid_entry, vpid_entry
from .layout import (
    C_BASE,
    C_DRAM,
    C_FLAT,
    C_L1,
    C_L1D,
    C_L2,
    C_L2C,
    C_L3C,
    C_NTLB,
    C_PWC,
    N_COSTS,
    N_STRUCTS,
    S_CACHE_L1D,
    S_L1_1G,
    S_L1_2M,
    S_L1_4K,
    S_L2,
    S_NTLB,
    S_NWC,
    S_PWC,
    TF_GLOBAL,
    TF_PAGE_MASK,
    TF_PAGE_SHIFT,
    TF_SIZE_MASK,
)
from .setassoc import ASID, FLAGS, KEY, STAMP, VAL, cache_length, empty, fields, lru_ages, make_arrays, slots
from .walk import VA_MASK

TLB_STRUCTS = (S_L1_4K, S_L1_2M, S_L1_1G, S_L2)
PWC_STRUCTS = tuple(S_PWC + i for i in range(4))


def _sets(entries: int, ways: int) -> tuple[int, int]:
    return (entries // ways, ways) if entries else (0, 0)


def geometry(config: Config) -> list[tuple[int, int]]:
    """(sets, ways) of every structure, in layout order."""
    geo = [(0, 0)] * N_STRUCTS
    for s, name in zip(TLB_STRUCTS, ("l1_4k", "l1_2m", "l1_1g", "l2")):
        geo[s] = _sets(config[f"tlb.{name}.entries"], config[f"tlb.{name}.ways"])
    for base, cache in ((S_PWC, "pwc"), (S_NWC, "nwc")):
        if config[f"{cache}.enabled"]:
            for level in range(2, 6):
                geo[base + level - 2] = _sets(config[f"{cache}.l{level}_entries"], config[f"{cache}.l{level}_ways"])
    if config["ntlb.enabled"]:
        geo[S_NTLB] = _sets(config["ntlb.entries"], config["ntlb.ways"])
    for i, level in enumerate(("l1d", "l2", "l3")):
        lines = config[f"cache.{level}_kib"] * 1024 // 64
        ways = config[f"cache.{level}_ways"]
        geo[S_CACHE_L1D + i] = (lines // ways, ways)
    return geo


def costs(config: Config) -> np.ndarray:
    cost = np.zeros(N_COSTS, dtype=np.int64)
    cost[C_BASE] = config["cost.access"]
    cost[C_L1] = config["cost.tlb_l1"]
    cost[C_L2] = config["cost.tlb_l2"]
    cost[C_PWC] = config["cost.pwc_hit"]
    cost[C_NTLB] = config["cost.ntlb_hit"]
    cost[C_L1D] = config["cost.ref_l1d"]
    cost[C_L2C] = config["cost.ref_l2"]
    cost[C_L3C] = config["cost.ref_l3"]
    cost[C_DRAM] = config["cost.ref_dram"]
    cost[C_FLAT] = config["cost.ref_flat"]
    return cost


_EMPTY: dict[bytes, np.ndarray] = {}
# cache arrays of MMUs a restore threw away (MMU.recycle), by length: the next MMU restored takes one over
_SPARE: dict[int, list[np.ndarray]] = {}


def _empty_cache(geom: np.ndarray, length: int) -> np.ndarray:
    """The cache array of a machine with nothing cached yet (every key -1, everything else 0), one per
    geometry (read-only: callers copy it)."""
    key = geom.tobytes()
    blank = _EMPTY.get(key)
    if blank is None:
        blank = np.zeros(length, dtype=np.int64)
        for s in range(len(geom)):
            fields(geom, blank, s)[KEY] = -1
        blank.flags.writeable = False
        _EMPTY.clear()  # one geometry at a time in practice; never more than one kept
        _EMPTY[key] = blank
    return blank


def _in_page(keys, tags, flags, va: int, asid: int):
    """Which TLB entries (their key, tag and flags, as arrays) translate part of the page holding va for this
    VPID, global ones of any PCID too. The page is the one the translation came from (TF_PAGE)."""
    vpid = asid >> 12
    mine = (tags == asid) | (((tags >> 12) == vpid) & ((flags & TF_GLOBAL) != 0))
    entry_shift = 12 + 9 * (flags & TF_SIZE_MASK)
    page_shift = 12 + 9 * ((flags & TF_PAGE_MASK) >> TF_PAGE_SHIFT)
    start = (keys >> 2) << entry_shift  # first address the entry translates
    return (keys != -1) & mine & ((start >> page_shift) == (va >> page_shift))


class Ways:
    """Every way of some structures as indices into the cache array: its key, tag (ASID), flags and stamp."""

    def __init__(self, geom: np.ndarray, structs):
        parts = [(slots(geom, s).ravel(), int(geom[s, 2])) for s in structs]
        self.key = np.concatenate([p for p, _ in parts] + [np.zeros(0, dtype=np.int64)])
        ways = np.concatenate([np.full(len(p), w, dtype=np.int64) for p, w in parts] + [np.zeros(0, dtype=np.int64)])
        self.tag = self.key + ASID * ways
        self.flags = self.key + FLAGS * ways
        self.stamp = self.key + STAMP * ways


class MMU:
    """TLB, walk-cache and data-cache arrays of one machine."""

    def __init__(self, config: Config):
        fields_of = [2 if s >= S_CACHE_L1D else 5 for s in range(N_STRUCTS)]  # data caches: key and stamp only
        self.geom, self.c = make_arrays(geometry(config), fields_of)
        self.cost = costs(config)
        # the largest page a translation can come from: no TLB entry is a piece of a larger page than this
        self.max_page = E.size_code(config["guest.page"])
        # the VPID flushed whole since the hardware last ran (machine.Machine.run clears it): only the kernel
        # fills entries, so flushing it again before the next run would find nothing to drop
        self.flushed_vpid: int | None = None
        self._index()

    def _index(self) -> None:
        """(5, sets, ways) views of every structure, for snapshots, and its ways, for the invalidations below."""
        self.views = [fields(self.geom, self.c, s) for s in range(N_STRUCTS)]
        self.lru = np.zeros(2 * int(self.geom[S_L2, 1]) + 1, np.int64)  # scratch of fast_miss.l2_order, never saved
        self.tlbs = Ways(self.geom, TLB_STRUCTS)
        self.pwcs = Ways(self.geom, PWC_STRUCTS)

    # --- checkpoints (timeline.py) -----------------------------------------------------------
    def __getstate__(self) -> dict:
        """The cache array as its difference from an empty one: most of it is data-cache lines never filled, so a
        checkpoint holds what was filled, not megabytes of empty ways. The views and ways are rebuilt on load."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("c", "views", "tlbs", "pwcs", "lru")}
        changed = np.flatnonzero(self.c != _empty_cache(self.geom, len(self.c)))
        state["c_changed"] = (changed.astype(np.int32 if len(self.c) < 1 << 31 else np.int64), self.c[changed])
        state["c_len"] = len(self.c)
        return state

    def __setstate__(self, state: dict) -> None:
        where, values = state.pop("c_changed")
        # (at least the padding a compiled scan reads past the last set: a checkpoint written before it had none)
        empty = _empty_cache(state["geom"], max(state.pop("c_len"), cache_length(state["geom"])))
        try:
            c = _SPARE.get(len(empty), []).pop()
            np.copyto(c, empty)
        except IndexError:
            c = empty.copy()
        c[where] = values
        self.__dict__.update(state)
        self.c = c
        self._index()

    def recycle(self) -> None:
        """This MMU's machine is thrown away (a restore replaced it): the next MMU restored reuses its cache
        array, already in memory (a new one of ~9 MB costs page faults, 20-150 ms with transparent huge pages
        on a busy machine, against 1 ms to copy). The MMU must not be used after this."""
        spare = _SPARE.setdefault(len(self.c), [])
        if len(spare) < 8:
            spare.append(self.c)
        self.c, self.views = None, []

    def _empty(self, ways: Ways, gone: np.ndarray) -> None:
        """Empty the ways where `gone` is true (a mask over `ways`)."""
        if gone.any():
            empty(self.c, ways.key[gone], ways.stamp[gone])

    def _tagged(self, ways: Ways, asid: int) -> np.ndarray:
        c = self.c
        return pcid_entry(c[ways.key], c[ways.tag], asid)

    # --- the invalidations software can ask for ---------------------------------------------
    def invlpg(self, va: int, asid: int) -> None:
        """INVLPG: drop every translation of the page holding va (global ones too) for this VPID, and
        every paging-structure cache entry of the PCID (Intel SDM Vol. 3A §4.10.4.1).

        The page is the one the translation came from, not the entry's own size: a 2 MiB guest page
        cached as 4 KiB pieces (4 KiB host pages under nested paging) or a 1 GiB page smashed into a
        2 MiB L1 loses every piece. "Execution of INVLPG for a linear address on a page will
        invalidate any and all smaller-page TLB entries for the translation of any linear address on
        that page" (SDM Vol. 3A §4.10.2.3); INVLPG "flushes all TLB entries for that page" (SDM
        Vol. 2A, INVLPG).

        Where the guest maps only 4 KiB pages, every entry is a whole 4 KiB page in the set of its page
        number, so only the ways of that set of the L1 4K array and of the L2 that hold the page's key are
        looked at (fast_fault.drop_if_page_4k; the fast fault path's fast_fault.invlpg_4k looks at the same
        set); otherwise every entry."""
        va &= VA_MASK
        c = self.c
        if self.max_page:
            ways = self.tlbs
            self._empty(ways, _in_page(c[ways.key], c[ways.tag], c[ways.flags], va, asid))
        else:
            vpn = va >> 12
            for s in (S_L1_4K, S_L2):
                sets, ways, mask, fields_ = (int(x) for x in self.geom[s, 1:5])
                if not sets:
                    continue
                first = int(self.geom[s, 0]) + (vpn & mask if mask >= 0 else vpn % sets) * ways * fields_
                for way in np.flatnonzero(c[first : first + ways] == vpn << 2).tolist():
                    drop_if_page_4k(c, first + way, ways, vpn, asid)
        self._empty(self.pwcs, self._tagged(self.pwcs, asid))

    def flush_asid(self, asid: int, keep_global: bool = True) -> None:
        """A CR3 load without PCID / INVPCID single-context: drop one address space's entries."""
        gone = self._tagged(self.tlbs, asid)
        if keep_global:
            gone &= (self.c[self.tlbs.flags] & TF_GLOBAL) == 0
        self._empty(self.tlbs, gone)
        self._empty(self.pwcs, self._tagged(self.pwcs, asid))

    def flush_vpid(self, vpid: int) -> None:
        """Every linear translation of one VPID, global ones too (INVVPID single-context)."""
        if vpid == self.flushed_vpid:
            return
        c = self.c
        for ways in (self.tlbs, self.pwcs):
            self._empty(ways, vpid_entry(c[ways.key], c[ways.tag], vpid))
        self.flushed_vpid = vpid

    def flush_all(self) -> None:
        """Cold hardware: empty every TLB, walk cache and data cache (benchmarks start from here)."""
        every = Ways(self.geom, range(N_STRUCTS))  # a data cache has many ways: not kept
        self._empty(every, self.c[every.key] != -1)

    # --- views for snapshots ---------------------------------------------------------------
    def entries(self, s: int) -> list[tuple[int, int, int, int, int, int, int]]:
        """(set, way, key, asid, val, flags, LRU age) of the valid entries of structure s."""
        v = self.views[s]
        ages = lru_ages(self.geom, self.c, s)
        return [(int(i), int(w), *(int(v[f][i, w]) for f in (KEY, ASID, VAL, FLAGS)), int(ages[i, w]))
                for i, w in zip(*np.nonzero(v[KEY] != -1))]
