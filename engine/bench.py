"""Engine throughput, measured the way the speed targets are stated.

Each stream is timed alone (no parsing, no start-up), per mode, after an
untimed warm-up pass that faults every page in and is then forgotten by the
hardware (TLBs and caches flushed, counters zeroed): the timed pass starts
with cold hardware, as a cache simulator would, so its TLB hit and miss
counts can be compared one for one with pycachesim's on the same stream and
geometry. pycachesim (a C cache simulator, used as a two-level TLB) is the
baseline when it is installed (``pip install 'rvi-tui[bench]'``).

Beside it run two bare kernels, the least a native model can do written as
plain compiled code with nothing else (`_bare_native`): the two-level TLB
alone, and the TLB with a page walk on each miss over the same page tables the
engine walks. They bound what any mode can reach on a stream.
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit

from ..workloads import ops as O
from .config import Config
from .entry import ADDR_MASK, A
from .machine import Machine
from .walk import VA_MASK

# ChampSim's DTLB 16x4 and STLB 128x12 (notes §3.5): the geometry the targets were set on.
BENCH_SETS = (
    "tlb.l1_4k.entries=64", "tlb.l1_4k.ways=4", "tlb.l1_2m.entries=32", "tlb.l1_2m.ways=4",
    "tlb.l1_1g.entries=4", "tlb.l1_1g.ways=4", "tlb.l2.entries=1536", "tlb.l2.ways=12",
)
CHUNK = 1 << 20
# The cost models a run can time: data caches off (walk references at one flat latency; like
# pycachesim, nothing but TLBs and walks is simulated) or the preset's full model.
MODELS = {"walks": ("cache.enabled=false",), "full": ()}


def random_stream(n: int, footprint: int = 1 << 30, seed: int = 1, base: int = 0x7F00_0000_0000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return base + (rng.integers(0, footprint, n, dtype=np.int64) & ~7)


def sequential_stream(n: int, base: int = 0x7F00_0000_0000) -> np.ndarray:
    return base + np.arange(n, dtype=np.int64) * 8


def _ops_chunks(addrs: np.ndarray, rws: np.ndarray | None):
    for i in range(0, len(addrs), CHUNK):
        ops = O.accesses(addrs[i : i + CHUNK].astype(np.uint64))
        if rws is not None:
            ops["rw"] = rws[i : i + CHUNK]
        yield ops


def warmed_machine(mode: str, config: Config, addrs: np.ndarray) -> Machine:
    """A machine with every page of the stream faulted in (untimed), then cold hardware and zero counts."""
    machine = Machine(mode, config)
    pages = np.unique(addrs >> 12) << 12
    for chunk in _ops_chunks(pages, None):
        chunk["rw"] = O.WRITE
        machine.run(chunk)
    machine.mmu.flush_all()
    machine.cnt[:] = 0
    return machine


def time_machine(machine: Machine, addrs: np.ndarray, rws: np.ndarray | None = None) -> dict:
    """Accesses/s of a warmed machine on a stream, and its TLB and walk counts."""
    chunks = list(_ops_chunks(addrs, rws))
    start = time.perf_counter()
    for chunk in chunks:
        machine.run(chunk)
    seconds = time.perf_counter() - start
    c = machine.counters()
    return {
        "accesses_per_s": len(addrs) / seconds,
        "seconds": seconds,
        "l1_hits": c["tlb_l1_hits"],
        "l2_hits": c["tlb_l2_hits"],
        "misses": c["tlb_misses"],
        "walk_refs": c["walk_refs"],
    }


def pycachesim_baseline(config: Config, addrs: np.ndarray) -> dict | None:
    """The same stream through pycachesim set up as the L1 4K TLB over the L2 (4 KiB 'lines'), or None."""
    try:
        from cachesim import Cache, CacheSimulator, MainMemory
    except ImportError:
        return None
    mem = MainMemory()
    l2_entries, l2_ways = config["tlb.l2.entries"], config["tlb.l2.ways"]
    l1_entries, l1_ways = config["tlb.l1_4k.entries"], config["tlb.l1_4k.ways"]
    l2 = Cache("L2", l2_entries // l2_ways, l2_ways, 4096, "LRU")
    mem.load_to(l2)
    mem.store_from(l2)
    l1 = Cache("L1", l1_entries // l1_ways, l1_ways, 4096, "LRU", store_to=l2, load_from=l2)
    sim = CacheSimulator(l1, mem)
    addrs = addrs & ~4095  # one 'line' per page, so an 8-byte access never spans two
    start = time.perf_counter()
    sim.load(addrs, length=1)
    seconds = time.perf_counter() - start
    return {
        "accesses_per_s": len(addrs) / seconds,
        "seconds": seconds,
        "l1_hits": l1.stats()["HIT_count"],
        "l2_hits": l2.stats()["HIT_count"],
        "misses": l2.stats()["MISS_count"],
    }


@njit(nogil=True, cache=True, _nrt=False, inline="always")
def _index(key, sets):
    return key & (sets - 1) if sets & (sets - 1) == 0 else key % sets


@njit(nogil=True, cache=True, _nrt=False, inline="always")
def _find(keys, row, key):
    """The way of `row` holding key, or -1 (every way compared, no early exit)."""
    hit = -1
    for way in range(keys.shape[1]):
        hit = way if keys[row, way] == key else hit
    return hit


@njit(nogil=True, cache=True, _nrt=False, inline="always")
def _lru(stamps, row):
    victim = 0
    oldest = stamps[row, 0]
    for way in range(1, stamps.shape[1]):
        older = stamps[row, way] < oldest
        victim = way if older else victim
        oldest = stamps[row, way] if older else oldest
    return victim


@njit(nogil=True, cache=True, _nrt=False)
def _bare_native(pages, walk, tables, rows, base, root, levels, k1, s1, v1, k2, s2, v2, pk, ps, pv, pwc_sets):
    """The least a native model can do, as plain compiled code: an L1 over an L2 TLB (LRU, keys,
    stamps and frames in small 2-D arrays, no tags), and with `walk` a page walk on a miss that
    starts below the deepest paging-structure-cache hit, reads one entry a level from the same
    table arrays the engine walks, sets A and fills the caches. No counters, events, faults or
    page sizes. Returns (L1 hits, L2 hits, walk references)."""
    clock = 0
    l1_hits = 0
    l2_hits = 0
    refs = 0
    for i in range(pages.shape[0]):
        vpn = pages[i]
        clock += 1
        a = _index(vpn, k1.shape[0])
        hit = _find(k1, a, vpn)
        if hit >= 0:
            s1[a, hit] = clock
            l1_hits += 1
            continue
        b = _index(vpn, k2.shape[0])
        hit = _find(k2, b, vpn)
        if hit >= 0:
            s2[b, hit] = clock
            l2_hits += 1
            frame = v2[b, hit]
        else:
            frame = vpn
            if walk:
                table = root
                level = levels
                for lvl in range(2, levels + 1):  # the deepest cached level first
                    if pwc_sets[lvl - 2] == 0:
                        continue
                    key = vpn >> (9 * (lvl - 1))
                    row = _index(key, pwc_sets[lvl - 2])
                    found = _find(pk[lvl - 2], row, key)
                    if found >= 0:
                        ps[lvl - 2, row, found] = clock
                        table = pv[lvl - 2, row, found]
                        level = lvl - 1
                        break
                while True:
                    idx = (vpn >> (9 * (level - 1))) & 511
                    trow = rows[table - base]
                    e = tables[trow, idx]
                    refs += 1
                    if (e & A) == 0:
                        tables[trow, idx] = e | A
                    nxt = (e & ADDR_MASK) >> 12
                    if level == 1:
                        frame = nxt
                        break
                    if pwc_sets[level - 2] > 0:
                        key = vpn >> (9 * (level - 1))
                        row = _index(key, pwc_sets[level - 2])
                        way = _lru(ps[level - 2], row)
                        pk[level - 2, row, way] = key
                        ps[level - 2, row, way] = clock
                        pv[level - 2, row, way] = nxt
                    table = nxt
                    level -= 1
            way = _lru(s2, b)
            k2[b, way] = vpn
            s2[b, way] = clock
            v2[b, way] = frame
        way = _lru(s1, a)
        k1[a, way] = vpn
        s1[a, way] = clock
        v1[a, way] = frame
    return l1_hits, l2_hits, refs


def _bare_arrays(config: Config) -> tuple:
    """Empty TLB and walk-cache arrays of the config's geometry; padding ways never hit nor get evicted."""
    out = []
    for t in ("l1_4k", "l2"):
        entries, ways = config[f"tlb.{t}.entries"], config[f"tlb.{t}.ways"]
        sets = max(1, entries // ways)
        out += [np.full((sets, ways), -1, np.int64), np.zeros((sets, ways), np.int64), np.zeros((sets, ways), np.int64)]
    levels = config["guest.levels"]
    geo = [(config[f"pwc.l{lvl}_entries"] // config[f"pwc.l{lvl}_ways"], config[f"pwc.l{lvl}_ways"])
           if config["pwc.enabled"] else (0, 0) for lvl in range(2, levels + 1)]
    max_sets = max(1, max(g[0] for g in geo))
    max_ways = max(1, max(g[1] for g in geo))
    pk = np.full((len(geo), max_sets, max_ways), -2, np.int64)  # -2: a key no page has
    ps = np.full((len(geo), max_sets, max_ways), np.iinfo(np.int64).max, np.int64)
    for level, (sets, ways) in enumerate(geo):
        pk[level, :sets, :ways] = -1
        ps[level, :sets, :ways] = 0
    pwc_sets = np.array([g[0] for g in geo], np.int64)  # 0: that level has no cache
    return (*out, pk, ps, np.zeros_like(pk), pwc_sets)


def bare_baseline(config: Config, addrs: np.ndarray, machine: Machine | None = None) -> dict:
    """A stream through `_bare_native`: TLB only, or with walks over `machine`'s page tables
    (a native machine that has every page of the stream mapped)."""
    pages = (addrs & VA_MASK) >> 12
    if machine is None:
        tables, rows, base, root = np.zeros((1, 512), np.int64), np.zeros(1, np.int32), 0, 0
    else:
        tables, rows, base, root = machine.gmem.tables, machine.gmem.rows, machine.gmem.base, machine.os.current.root
    args = (tables, rows, base, root, config["guest.levels"])
    _bare_native(pages[:1], machine is not None, *args, *_bare_arrays(config))  # compiled before the clock starts
    arrays = _bare_arrays(config)
    start = time.perf_counter()
    l1_hits, l2_hits, refs = _bare_native(pages, machine is not None, *args, *arrays)
    seconds = time.perf_counter() - start
    return {
        "accesses_per_s": len(addrs) / seconds,
        "seconds": seconds,
        "l1_hits": int(l1_hits),
        "l2_hits": int(l2_hits),
        "misses": len(addrs) - int(l1_hits) - int(l2_hits),
        "walk_refs": int(refs),
    }
