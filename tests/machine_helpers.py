"""Shared helpers for the engine tests: configs and op builders."""

from __future__ import annotations

from rvi_tui.engine import config as C
from rvi_tui.engine.layout import SW_FLUSHED_SEQ
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


def cache_entries(m, s: int) -> list:
    """(set, way, fields..., LRU age) of every valid entry of structure s (data caches: key only)."""
    import numpy as np
    from rvi_tui.engine.setassoc import ASID, FLAGS, KEY, VAL, lru_ages

    v = m.mmu.views[s]
    ages = lru_ages(m.mmu.geom, m.mmu.c, s)
    named = (KEY, ASID, VAL, FLAGS) if v.shape[0] == 5 else (KEY,)  # every field but the stamp: the age says it
    return [(int(i), int(w), *(int(v[f][i, w]) for f in named), int(ages[i, w]))
            for i, w in zip(*np.nonzero(v[KEY] != -1))]


def machine_state(m, caches: bool = True) -> dict:
    """Everything that makes up one machine's state, as plain data, for comparing two machines: counters,
    every TLB / walk-cache / data-cache entry with its LRU age (unless `caches` is false: the slowest part to
    take), the hardware's registers, the guest's and the host's table pages, the guest OS's processes and
    memory, the host's backing and the shadow pages."""
    import numpy as np
    from rvi_tui.engine.layout import N_STRUCTS, ST_CLOCK, ST_FAST_MISS, ST_MAX_WALK, SW_FAST

    def tables(mem):
        rows = {f: mem.table(f).tolist() for f in range(mem.base, mem.base + len(mem.rows)) if mem.is_table(f)}
        return {"tables": rows, "frames_in_use": mem.frames_in_use, "next": mem._next,
                "free": (mem.free_4k(), list(mem._free_2m), list(mem._free_1g))}

    st = m.st.copy()
    st[ST_CLOCK] = 0  # the LRU clock's raw value may differ (the batch path skips no-op touches); ages may not
    st[ST_MAX_WALK] = 0  # the event index's scratch: cleared at its buckets' ends, which only a history session has
    st[ST_FAST_MISS] = 0  # the switch of the short miss path, which a comparison may set differently
    sw = m.sw.copy()
    sw[SW_FAST] = 0  # the switch of the fast fault path, which a comparison may set differently
    os_ = m.os
    state = {
        "counters": m.counters(),
        "noted": dict(m.noted),
        "caches": [cache_entries(m, s) for s in range(N_STRUCTS)] if caches else None,
        "st": st.tolist(),
        "sw": sw.tolist(),
        "guest": tables(m.gmem),
        "host": tables(m.host.mem),
        "backed": np.flatnonzero(m.host.backed).tolist(),
        "procs": {pid: (p.root, p.pcid, [(v.start, v.end, v.writable, v.huge, v.implicit) for v in p.vmas])
                  for pid, p in os_.procs.items()},
        "current": os_.current.pid if os_.current is not None else None,
        "zero_frame": os_.zero_frame,
        "page_refs": (dict(os_.pages.units), dict(os_.pages.block_of), {k: list(v) for k, v in os_.pages.blocks.items()}),
    }
    mode = m.mode
    if m.host.nested is not None:
        state["nested_root"] = m.host.nested.root
    if m.name == "shadow":
        state["shadow"] = {
            key: (sp.frame, sp.unsync, sorted(sp.stale), sp.flood, sorted((p.frame, i) for p, i in sp.parents),
                  sorted((i, c.frame) for i, c in sp.children.items()))
            for key, sp in mode.pages.items()}
        state["shadow_order"] = list(mode.pages)
        state["shadow_roots"] = {g: sp.frame for g, sp in mode.roots.items()}
        state["shadow_current"] = mode.current_root.frame if mode.current_root is not None else None
        state["shadow_unsync"] = (mode.n_unsync, mode.seq - int(mode.m.sw[SW_FLUSHED_SEQ]))
    return state


def run_side_by_side(ops, config, mode: str, chunk: int, prepare, arrays):
    """Two machines of `mode` on the same ops, chunk by chunk, after `prepare(first, second)` set their switches:
    their raw `arrays(machine)` must be equal after every chunk, and their whole states (machine_state) at the
    end. Returns the two machines and what `prepare` returned."""
    import numpy as np
    from rvi_tui.engine.machine import Machine

    first, second = Machine(mode, config), Machine(mode, config)
    prepared = prepare(first, second)
    for start in range(0, len(ops), chunk):
        part = ops[start : start + chunk]
        first.run(part)
        second.run(part)
        for i, (a, b) in enumerate(zip(arrays(first), arrays(second))):
            assert np.array_equal(a, b), f"{mode}: the paths differ after op {start + len(part)} (array {i})"
    assert machine_state(first) == machine_state(second), f"{mode}: the paths differ at the end"
    return first, second, prepared
