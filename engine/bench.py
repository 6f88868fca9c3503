"""Engine throughput, measured the way the speed targets are stated.

Each stream is timed alone (no parsing, no start-up), per mode, after an
untimed warm-up pass that faults every page in and is then forgotten by the
hardware (TLBs and caches flushed, counters zeroed): the timed pass starts
with cold hardware, as a cache simulator would, so its TLB hit and miss
counts can be compared one for one with pycachesim's on the same stream and
geometry. pycachesim (a C cache simulator, used as a two-level TLB) is the
baseline when it is installed (``pip install 'rvi-tui[bench]'``).

Beside it runs a bare two-level TLB made of the engine's own compiled
set-associative code, with no walks: what a stream costs before any mode does
anything else, so the ceiling of every mode on that stream.
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit

from ..workloads import ops as O
from .config import Config
from .layout import N_STATE
from .machine import Machine
from .setassoc import make_arrays, sa_fill, sa_find, sa_touch

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


def time_mode(mode: str, config: Config, addrs: np.ndarray, rws: np.ndarray | None = None) -> dict:
    """Accesses/s of one mode on a stream, and its TLB counts."""
    machine = Machine(mode, config)
    pages = np.unique(addrs >> 12) << 12
    for chunk in _ops_chunks(pages, None):  # warm-up: demand-fault every page (untimed)
        chunk["rw"] = O.WRITE
        machine.run(chunk)
    machine.mmu.flush_all()
    machine.cnt[:] = 0
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
        "walk_refs_per_access": c["walk_refs"] / max(1, c["accesses"]),
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


@njit(nogil=True, cache=True, _nrt=False)
def _two_level_tlb(pages, geom, c, st):
    """L1 over L2, LRU, filled on a miss as the engine fills them; returns (L1 hits, L2 hits)."""
    l1_hits = 0
    l2_hits = 0
    for i in range(pages.shape[0]):
        vpn = pages[i]
        slot = sa_find(geom, c, 0, vpn, vpn, 0)
        if slot >= 0:
            sa_touch(geom, c, st, 0, slot)
            l1_hits += 1
            continue
        slot = sa_find(geom, c, 1, vpn, vpn, 0)
        if slot >= 0:
            sa_touch(geom, c, st, 1, slot)
            l2_hits += 1
        else:
            sa_fill(geom, c, st, 1, vpn, vpn, 0, 0, 0)
        sa_fill(geom, c, st, 0, vpn, vpn, 0, 0, 0)
    return l1_hits, l2_hits


def tlb_only_baseline(config: Config, addrs: np.ndarray) -> dict:
    """The stream through a bare two-level TLB of the engine's own code: no walks, no faults, no counters."""
    levels = [(config[f"tlb.{t}.entries"], config[f"tlb.{t}.ways"]) for t in ("l1_4k", "l2")]
    geom, c = make_arrays([(entries // ways if entries else 0, ways) for entries, ways in levels])
    st = np.zeros(N_STATE, dtype=np.int64)
    pages = addrs >> 12
    _two_level_tlb(pages[:1], geom.copy(), c.copy(), st.copy())  # compiled (or loaded) before the clock starts
    start = time.perf_counter()
    l1_hits, l2_hits = _two_level_tlb(pages, geom, c, st)
    seconds = time.perf_counter() - start
    return {
        "accesses_per_s": len(addrs) / seconds,
        "seconds": seconds,
        "l1_hits": int(l1_hits),
        "l2_hits": int(l2_hits),
        "misses": len(addrs) - int(l1_hits) - int(l2_hits),
    }
