"""Engine throughput, measured the way the speed targets are stated.

Each stream is timed alone (no parsing, no start-up), per mode, after an
untimed warm-up pass that faults every page in and is then forgotten by the
hardware (TLBs and caches flushed, counters zeroed): the timed pass starts
with cold hardware, as a cache simulator would, so its TLB hit and miss
counts can be compared one for one with pycachesim's on the same stream and
geometry. pycachesim (a C cache simulator, used as a two-level TLB) is the
baseline when it is installed (``pip install 'rvi-tui[bench]'``).

Beside it run the bare kernels, the least a model can do written as plain
compiled code with nothing else: the two-level TLB alone and the TLB with a
page walk on each miss, and the TLB with nested paging's 2D walk on each miss
(`_bare`), over the same page tables the engine walks.
They bound what native and nested paging can reach on a stream.
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit

from ..workloads import ops as O
from .config import Config
from .entry import ADDR_MASK, A
from .errors import EngineError
from .lru_order import ORDER_WAYS, order_to_top
from .machine import Machine
from .walk import VA_MASK

# ChampSim's DTLB 16x4 and STLB 128x12 (notes §3.5): the geometry the targets were set on.
BENCH_SETS = (
    "tlb.l1_4k.entries=64", "tlb.l1_4k.ways=4", "tlb.l1_2m.entries=32", "tlb.l1_2m.ways=4",
    "tlb.l1_1g.entries=4", "tlb.l1_1g.ways=4", "tlb.l2.entries=1536", "tlb.l2.ways=12",
)
CHUNK = 1 << 20


def geometry_label(config: Config) -> str:
    """The TLB geometry a bench ran with, as its table's title states it."""
    l1, l2 = ((config[f"tlb.{t}.entries"], config[f"tlb.{t}.ways"]) for t in ("l1_4k", "l2"))
    label = f"L1 {l1[0]} entries {l1[1]}-way, L2 {l2[0]} entries {l2[1]}-way"
    return label + (" (ChampSim)" if (l1, l2) == ((64, 4), (1536, 12)) else "")
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


TIMINGS = ("seconds", "accesses_per_s", "faults_per_s", "us_per_fault")  # what differs between runs of a stream


def fastest(runs: list[dict], rate: str = "accesses_per_s") -> dict:
    """The fastest of repeated timings of one column (`bench --repeat`) by `rate`. A run is deterministic, so
    each counts the same; a difference is a bug, reported as one."""
    counts = {key: value for key, value in runs[0].items() if key not in TIMINGS}
    for run in runs[1:]:
        if {key: run[key] for key in counts} != counts:
            raise EngineError(f"two runs of the same stream counted differently: {counts} and {run}")
    return max(runs, key=lambda run: run[rate])


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


FAULT_PAGES = 1 << 20  # first touches the fault stream times at most: 4 GiB of pages


def fault_stream(n: int, seed: int = 1, base: int = 0x7F00_0000_0000) -> np.ndarray:
    """Ops mapping n pages and touching each once, in a random order: every access a guest page fault, half of
    them reads (the zero page mapped) and half writes (a fresh page), as a program filling a large, scattered
    working set does; a page table is made once for every 512 pages."""
    rng = np.random.default_rng(seed)
    pages = rng.permutation(n).astype(np.uint64)
    touches = O.accesses(np.uint64(base) + (pages << np.uint64(12)))
    touches["rw"] = rng.integers(0, 2, n) * O.WRITE
    return O.concat([O.mmap(1, base, n << 12), touches])


def time_faults(mode: str, config: Config, ops: np.ndarray) -> dict:
    """A fresh machine on a fault stream: its seconds, guest page faults, VM exits and the cost of a fault."""
    machine = Machine(mode, config)
    start = time.perf_counter()
    for i in range(0, len(ops), CHUNK):
        machine.run(ops[i : i + CHUNK])
    seconds = time.perf_counter() - start
    c = machine.counters()
    return {"seconds": seconds, "faults": c["guest_pf"], "exits": c["exits"],
            "faults_per_s": c["guest_pf"] / seconds, "us_per_fault": seconds / c["guest_pf"] * 1e6}


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


# The bare kernels keep each set's LRU order in one word (lru_order.py): on random accesses that runs the TLB
# alone about twice as fast as stamps and an argmin, the engine's form.
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
def _fill(keys, vals, orders, row, ways, key, val):
    """Put key -> val in the least recently used way of `row` (the low 4 bits of its order word)."""
    way = orders[row] & 15
    orders[row] = order_to_top(orders[row], way, ways)
    keys[row, way] = key
    vals[row, way] = val


@njit(nogil=True, cache=True, _nrt=False, inline="always")
def _tlb_probe(vpn, k1, o1, k2, v2, o2):
    """The two TLB levels for vpn: (0, 0) on an L1 hit, (1, frame) on an L2 hit, (2, 0) on a miss; a hit becomes
    the most recent of its set."""
    a = _index(vpn, k1.shape[0])
    hit = _find(k1, a, vpn)
    if hit >= 0:
        o1[a] = order_to_top(o1[a], hit, k1.shape[1])
        return 0, 0
    b = _index(vpn, k2.shape[0])
    hit = _find(k2, b, vpn)
    if hit >= 0:
        o2[b] = order_to_top(o2[b], hit, k2.shape[1])
        return 1, v2[b, hit]
    return 2, 0


@njit(nogil=True, cache=True, _nrt=False, inline="always")
def _walk(vpn, root, levels, tables, rows, base, pk, pv, po, pwc_sets, pwc_ways):
    """A one-dimensional walk for page number vpn: it starts below the deepest walk-cache hit, reads one entry a
    level (setting A) and caches each non-leaf entry. Returns (frame, references)."""
    table, level = _cached_table(vpn, levels, pk, pv, po, pwc_sets, pwc_ways)
    if table < 0:
        table = root
    refs = 0
    while True:
        nxt = _read_entry(vpn, level, table, tables, rows, base)
        refs += 1
        if level == 1:
            return nxt, refs
        _cache_table(vpn, level, nxt, pk, pv, po, pwc_sets, pwc_ways)
        table = nxt
        level -= 1


@njit(nogil=True, cache=True, _nrt=False, inline="always")
def _cached_table(vpn, levels, pk, pv, po, pwc_sets, pwc_ways):
    """(the table below the deepest walk-cache hit for vpn, the level to read in it), or (-1, levels)."""
    for lvl in range(2, levels + 1):  # the deepest cached level first
        if pwc_sets[lvl - 2] == 0:
            continue
        key = vpn >> (9 * (lvl - 1))
        row = _index(key, pwc_sets[lvl - 2])
        found = _find(pk[lvl - 2], row, key)
        if found >= 0:
            po[lvl - 2, row] = order_to_top(po[lvl - 2, row], found, pwc_ways[lvl - 2])
            return pv[lvl - 2, row, found], lvl - 1
    return -1, levels


@njit(nogil=True, cache=True, _nrt=False, inline="always")
def _read_entry(vpn, level, table, tables, rows, base):
    """One walk reference: the entry for vpn at `level` in `table`, marked accessed; returns the frame it holds."""
    idx = (vpn >> (9 * (level - 1))) & 511
    trow = rows[table - base]
    e = tables[trow, idx]
    if (e & A) == 0:
        tables[trow, idx] = e | A
    return (e & ADDR_MASK) >> 12


@njit(nogil=True, cache=True, _nrt=False, inline="always")
def _cache_table(vpn, level, nxt, pk, pv, po, pwc_sets, pwc_ways):
    """Cache a non-leaf entry of `level` (the frame of the next table) in that level's walk cache, if it has one."""
    if pwc_sets[level - 2] > 0:
        key = vpn >> (9 * (level - 1))
        _fill(pk[level - 2], pv[level - 2], po[level - 2], _index(key, pwc_sets[level - 2]), pwc_ways[level - 2],
              key, nxt)


@njit(nogil=True, cache=True, _nrt=False, inline="always")
def _nested_frame(gfn, h_tables, h_rows, h_base, nroot, hlevels, nk, nv, no, nwc_sets, nwc_ways, tk, tv, to):
    """A guest-physical frame's host frame: from the nested TLB (`tk`: no sets, none), else by a walk of the
    nested table with its walk caches, whose result the nested TLB then takes. Returns (frame, references)."""
    if tk.shape[0]:
        row = _index(gfn, tk.shape[0])
        hit = _find(tk, row, gfn)
        if hit >= 0:
            to[row] = order_to_top(to[row], hit, tk.shape[1])
            return tv[row, hit], 0
    frame, refs = _walk(gfn, nroot, hlevels, h_tables, h_rows, h_base, nk, nv, no, nwc_sets, nwc_ways)
    if tk.shape[0]:
        _fill(tk, tv, to, _index(gfn, tk.shape[0]), tk.shape[1], gfn, frame)
    return frame, refs


@njit(nogil=True, cache=True, _nrt=False)
def _bare(pages, dims, g_tables, g_rows, g_base, groot, glevels, h_tables, h_rows, h_base, nroot, hlevels,
          k1, v1, o1, k2, v2, o2, pk, pv, po, pwc_sets, pwc_ways, nk, nv, no, nwc_sets, nwc_ways, tk, tv, to):
    """The least a model can do, as plain compiled code: an L1 over an L2 TLB (LRU, keys and frames in small 2-D
    arrays, one order word a set as described above, no tags), and on a miss, by `dims`, no walk (0), a native
    page walk (1, `_walk`: below the deepest paging-structure-cache hit, one entry a level from the same table
    arrays the engine walks, A set, the caches filled), or nested paging's two-dimensional walk (2): the guest
    walk below the deepest guest walk-cache hit, where each guest table page it reads, and then the data page, is
    a guest-physical frame the nested TLB or a nested walk translates (`_nested_frame`). No counters, events,
    faults or page sizes. Returns (L1 hits, L2 hits, walk references of both dimensions)."""
    l1_hits = 0
    l2_hits = 0
    refs = 0
    for i in range(pages.shape[0]):
        vpn = pages[i]
        where, frame = _tlb_probe(vpn, k1, o1, k2, v2, o2)
        if where == 0:
            l1_hits += 1
            continue
        if where == 1:
            l2_hits += 1
        else:
            frame = vpn
            if dims == 1:
                frame, r = _walk(vpn, groot, glevels, g_tables, g_rows, g_base, pk, pv, po, pwc_sets, pwc_ways)
                refs += r
            elif dims == 2:
                gfn, level = _cached_table(vpn, glevels, pk, pv, po, pwc_sets, pwc_ways)
                if gfn < 0:
                    gfn = groot
                while True:
                    _, r = _nested_frame(gfn, h_tables, h_rows, h_base, nroot, hlevels, nk, nv, no, nwc_sets,
                                         nwc_ways, tk, tv, to)  # (the table page's host frame only locates the entry)
                    nxt = _read_entry(vpn, level, gfn, g_tables, g_rows, g_base)
                    refs += r + 1
                    if level == 1:
                        frame, r = _nested_frame(nxt, h_tables, h_rows, h_base, nroot, hlevels, nk, nv, no, nwc_sets,
                                                 nwc_ways, tk, tv, to)
                        refs += r
                        break
                    _cache_table(vpn, level, nxt, pk, pv, po, pwc_sets, pwc_ways)
                    gfn = nxt
                    level -= 1
            _fill(k2, v2, o2, _index(vpn, k2.shape[0]), k2.shape[1], vpn, frame)
        _fill(k1, v1, o1, _index(vpn, k1.shape[0]), k1.shape[1], vpn, frame)
    return l1_hits, l2_hits, refs


def _order_words(sets: int, ways: int) -> np.ndarray:
    """A fresh set's order word: ways 0, 1, ... from least to most recent, so way 0 fills first."""
    return np.full(sets, sum(w << (4 * w) for w in range(ways)), np.int64)


def _bare_arrays(config: Config) -> tuple | None:
    """Empty TLB and walk-cache arrays of the config's geometry (padding ways never hit nor get evicted),
    or None when a structure is wider than one order word holds."""
    out = []
    for t in ("l1_4k", "l2"):
        entries, ways = config[f"tlb.{t}.entries"], config[f"tlb.{t}.ways"]
        if ways > ORDER_WAYS:
            return None
        sets = max(1, entries // ways)
        out += [np.full((sets, ways), -1, np.int64), np.zeros((sets, ways), np.int64), _order_words(sets, ways)]
    pwc = _walk_cache_arrays(config, "pwc", config["guest.levels"])
    return None if pwc is None else (*out, *pwc)


def _walk_cache_arrays(config: Config, cache: str, levels: int) -> tuple | None:
    """A walk cache's arrays ("pwc" or "nwc"), a level a row: keys, frames, order words, sets (0: that level has
    no cache) and ways; or None when a level is wider than one order word holds."""
    geo = [(config[f"{cache}.l{lvl}_entries"] // config[f"{cache}.l{lvl}_ways"], config[f"{cache}.l{lvl}_ways"])
           if config[f"{cache}.enabled"] else (0, 0) for lvl in range(2, levels + 1)]
    if any(ways > ORDER_WAYS for _, ways in geo):
        return None
    max_sets = max(1, max(g[0] for g in geo))
    max_ways = max(1, max(g[1] for g in geo))
    keys = np.full((len(geo), max_sets, max_ways), -2, np.int64)  # -2: a key no page has
    orders = np.zeros((len(geo), max_sets), np.int64)
    for level, (sets, ways) in enumerate(geo):
        keys[level, :sets, :ways] = -1
        orders[level, :sets] = _order_words(sets, ways)
    return (keys, np.zeros_like(keys), orders, np.array([g[0] for g in geo], np.int64),
            np.array([g[1] for g in geo], np.int64))


def _nested_arrays(config: Config) -> tuple | None:
    """The nested walk cache's and the nested TLB's arrays (a TLB switched off has no sets), or None when one is
    wider than one order word holds."""
    nwc = _walk_cache_arrays(config, "nwc", config["host.levels"])
    entries, ways = config["ntlb.entries"], config["ntlb.ways"]
    if nwc is None or ways > ORDER_WAYS:
        return None
    sets = entries // ways if config["ntlb.enabled"] else 0
    return (*nwc, np.full((sets, ways), -1, np.int64), np.zeros((sets, ways), np.int64), _order_words(sets, ways))


def bare_baseline(config: Config, addrs: np.ndarray, machine: Machine | None = None) -> dict | None:
    """A stream through `_bare`: the TLB alone, or with walks over `machine`'s page tables (a native or nested
    machine that has every page of the stream mapped: the 1D or the 2D walk); None where the bare kernel does not
    model the config (sets wider than ORDER_WAYS; with walks, pages other than 4 KiB)."""
    nested = machine is not None and machine.name == "nested"
    if machine is not None and (config["guest.page"] != "4k" or (nested and config["host.page"] != "4k")):
        return None  # the bare walkers read 4 KiB leaves only
    no_tables = (np.zeros((1, 512), np.int64), np.zeros(1, np.int32), 0, 0, 0)
    guest = no_tables if machine is None else (
        machine.gmem.tables, machine.gmem.rows, machine.gmem.base, machine.os.current.root, config["guest.levels"])
    host = no_tables if not nested else (
        machine.host.mem.tables, machine.host.mem.rows, machine.host.mem.base, machine.host.nested.root,
        config["host.levels"])
    args = (0 if machine is None else 2 if nested else 1, *guest, *host)
    no_nested = (*(np.zeros((1, 1, 1), np.int64),) * 2, np.zeros((1, 1), np.int64), *(np.zeros(1, np.int64),) * 2,
                 *(np.zeros((0, 1), np.int64),) * 2, np.zeros(0, np.int64))

    def arrays():  # fresh and empty, or None
        tlbs, walk_2d = _bare_arrays(config), _nested_arrays(config) if nested else no_nested
        return None if tlbs is None or walk_2d is None else (*tlbs, *walk_2d)

    first = arrays()
    if first is None:
        return None
    pages = (addrs & VA_MASK) >> 12
    _bare(pages[:1], *args, *first)  # compiled before the clock starts
    fresh = arrays()
    start = time.perf_counter()
    l1_hits, l2_hits, refs = _bare(pages, *args, *fresh)
    seconds = time.perf_counter() - start
    return {
        "accesses_per_s": len(addrs) / seconds,
        "seconds": seconds,
        "l1_hits": int(l1_hits),
        "l2_hits": int(l2_hits),
        "misses": len(addrs) - int(l1_hits) - int(l2_hits),
        "walk_refs": int(refs),
    }
