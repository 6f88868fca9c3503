"""The MMU's state: TLBs, walk caches and data caches of one machine, and their invalidation.

Geometry comes from the config; the arrays are what the compiled kernel
reads. Invalidations are what software asks of the hardware (INVLPG, a CR3
load without PCID, INVPCID, INVEPT) and run here in numpy: they are rare.
"""

from __future__ import annotations

import numpy as np

from .config import Config
from .entry import size_code
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
)
from .setassoc import make_arrays
from .walk import VA_MASK

TLB_STRUCTS = (S_L1_4K, S_L1_2M, S_L1_1G, S_L2)


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


class MMU:
    """TLB, walk-cache and data-cache arrays of one machine."""

    def __init__(self, config: Config):
        self.geom, self.c = make_arrays(geometry(config))
        self.key, self.asid, self.val, self.flags, self.stamp = self.c  # row views
        self.cost = costs(config)

    def _span(self, s: int) -> slice:
        base, sets, ways = (int(x) for x in self.geom[s, :3])
        return slice(base, base + sets * ways)

    def _clear(self, s: int, mask: np.ndarray | None = None) -> int:
        span = self._span(s)
        keys = self.key[span]
        hit = keys != -1 if mask is None else (keys != -1) & mask
        n = int(hit.sum())
        keys[hit] = -1
        return n

    # --- the invalidations software can ask for ---------------------------------------------
    def invlpg(self, va: int, asid: int) -> None:
        """INVLPG: drop va's translations (every page size, global ones too) for this VPID, and
        every paging-structure cache entry of the PCID (Intel SDM Vol. 3A §4.10.4.1)."""
        va &= VA_MASK
        vpid = asid >> 12
        for s in TLB_STRUCTS:
            span = self._span(s)
            tags = self.asid[span]
            for size in range(3):
                vpn = va >> (12 + 9 * size)
                match = (self.key[span] == vpn * 4 + size) & ((tags == asid) | ((tags >> 12) == vpid) & ((self.flags[span] & TF_GLOBAL) != 0))
                self.key[span][match] = -1
        for level in range(2, 6):
            s = S_PWC + level - 2
            self._clear(s, self.asid[self._span(s)] == asid)

    def flush_asid(self, asid: int, keep_global: bool = True) -> None:
        """A CR3 load without PCID / INVPCID single-context: drop one address space's entries."""
        for s in TLB_STRUCTS:
            span = self._span(s)
            mask = self.asid[span] == asid
            if keep_global:
                mask &= (self.flags[span] & TF_GLOBAL) == 0
            self._clear(s, mask)
        for level in range(2, 6):
            s = S_PWC + level - 2
            self._clear(s, self.asid[self._span(s)] == asid)

    def flush_vpid(self, vpid: int, keep_global: bool = False) -> None:
        """Every linear translation of one VPID (INVVPID single-context, or all non-global ones)."""
        for s in TLB_STRUCTS + tuple(S_PWC + i for i in range(4)):
            span = self._span(s)
            mask = (self.asid[span] >> 12) == vpid
            if keep_global:
                mask &= (self.flags[span] & TF_GLOBAL) == 0
            self._clear(s, mask)

    def flush_nested(self) -> None:
        """INVEPT: guest-physical and combined mappings (the NTLB, the nested walk cache, the TLBs)."""
        for s in TLB_STRUCTS + (S_NTLB,) + tuple(S_NWC + i for i in range(4)):
            self._clear(s)

    def flush_all(self) -> None:
        """Cold hardware: empty every TLB, walk cache and data cache (benchmarks start from here)."""
        self.key[:] = -1

    def invalidate_nested_gpa(self, gfn: int, host_size: int) -> None:
        """Drop the NTLB entry for one guest-physical page (after the hypervisor changes it)."""
        key = gfn >> (9 * host_size)
        span = self._span(S_NTLB)
        self.key[span][self.key[span] == key] = -1

    # --- views for snapshots ---------------------------------------------------------------
    def entries(self, s: int) -> list[tuple[int, int, int, int, int, int, int]]:
        """(set, way, key, asid, val, flags, stamp) of the valid entries of structure s."""
        base, sets, ways = (int(x) for x in self.geom[s, :3])
        out = []
        for i in np.nonzero(self.key[base : base + sets * ways] != -1)[0]:
            slot = base + int(i)
            out.append((int(i) // ways, int(i) % ways, int(self.key[slot]), int(self.asid[slot]),
                        int(self.val[slot]), int(self.flags[slot]), int(self.stamp[slot])))
        return out

    def capacity(self, s: int) -> int:
        return int(self.geom[s, 1] * self.geom[s, 2])


def page_code(config: Config, key: str) -> int:
    return size_code(config[key])
