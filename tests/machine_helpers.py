"""Shared helpers for the engine tests: configs and op builders."""

from __future__ import annotations

from rvi_tui.engine import config as C
from rvi_tui.workloads import ops as O

BASE = 0x7F00_0000_0000
CACHES_OFF = {"pwc.enabled": False, "ntlb.enabled": False, "nwc.enabled": False}
# a small TLB so random streams exercise sets, ways and eviction
SMALL_TLB = {
    "tlb.l1_4k.entries": 8, "tlb.l1_4k.ways": 2, "tlb.l1_2m.entries": 4, "tlb.l1_2m.ways": 2,
    "tlb.l1_1g.entries": 2, "tlb.l1_1g.ways": 2, "tlb.l2.entries": 32, "tlb.l2.ways": 4,
}


def cfg(**overrides):
    """The modern preset with dotted-key overrides given as keyword names with '__' for '.'."""
    return C.load(overrides={k.replace("__", "."): v for k, v in overrides.items()})


def cfg_from(mapping: dict):
    return C.load(overrides=mapping)


def mmap_ops(length: int = 1 << 24, pid: int = 1, start: int = BASE, huge: bool = True):
    return O.mmap(pid, start, length, writable=True, huge=huge)


def machine(mode: str = "shadow", **overrides):
    """A machine on the modern preset with 1 GiB of guest memory and these config overrides."""
    from rvi_tui.engine.machine import Machine

    return Machine(mode, cfg_from({"guest.mem_gib": 1, **overrides}))


def delta(m, ops) -> dict[str, int]:
    """What running `ops` adds to each of m's counters."""
    before = m.counters()
    m.run(ops)
    return {k: v - before[k] for k, v in m.counters().items()}


def assert_no_entry_twice(machine) -> None:
    """No TLB, walk cache or data cache holds one key under one tag in two ways of a set:
    a fill after a miss takes the LRU way without searching the set for the entry."""
    import numpy as np
    from rvi_tui.engine.setassoc import ASID, KEY

    for s, view in enumerate(machine.mmu.views):
        keys = view[KEY]
        tags = view[ASID] if view.shape[0] == 5 else np.zeros_like(keys)
        rows = np.broadcast_to(np.arange(keys.shape[0])[:, None], keys.shape)
        valid = keys != -1
        entries = np.stack([rows[valid], keys[valid], tags[valid]], axis=1)
        unique = np.unique(entries, axis=0)
        assert len(unique) == len(entries), f"structure {s}: an entry twice in one set"
