"""The TLB-miss fast path (engine/fast_miss.py) against the general path (kernel.access) alone.

With data caches off and only 4 KiB pages in the TLBs, the batch kernels serve an L1 miss by a short path of
their own; switched off (Machine.fast_misses), every miss takes the general path. The same streams, run both
ways, must leave every machine in the same state after every chunk — every counter, the LRU clock, every TLB
and walk-cache entry with its stamp, every guest, host and shadow table entry — and in the same whole state
at the end (machine_helpers.machine_state). Each test also checks that the fast path took misses, so that it
cannot pass by never running: the general path starts a new generation of the fast path's LRU order words
each time it runs (fast_miss.l2_order), so a kernel that sends its misses there counts them in the last one.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from machine_helpers import SMALL_TLB, cfg_from, run_side_by_side
from op_streams import op_streams
from rvi_tui.engine import bench
from rvi_tui.engine.layout import ST_FAST_MISS, SW_FAST
from rvi_tui.engine.machine import Machine
from rvi_tui.engine.session import ALL_MODES
from rvi_tui.workloads import ops as O
from rvi_tui.workloads.registry import make_workload

WALKS = {"cache.enabled": False}  # the fast path's case: walk references at a flat latency
CHAMPSIM = dict(s.split("=") for s in bench.BENCH_SETS)  # L2 sets narrow enough for an order word
MODERN_WIDE = {}  # the modern preset's 72-way L1 and 24-way L2: no order word, the stamps choose


def arrays(m: Machine) -> list[np.ndarray]:
    """A machine's state as raw arrays; two machines that did the same work hold the same bytes (the switch aside)."""
    st_ = m.st.copy()
    st_[ST_FAST_MISS] = 0
    sw = m.sw.copy()
    sw[SW_FAST] = 0
    return [m.cnt, st_, sw, m.mmu.c, m.gmem.tables, m.gmem.rows, m.host.mem.tables, m.host.mem.rows,
            m.host.backed, m.mode.meta]


def generations(m: Machine) -> int:
    """Kernel calls plus misses (and fast faults) the general path took since the machine was made."""
    return int(m.mmu.lru[-1])


def run_both(ops: np.ndarray, config, chunk: int, modes=ALL_MODES, words_at_once: bool = True) -> dict:
    """Run ops chunk by chunk on each mode with the fast path on and off, comparing raw arrays after every chunk
    and whole states at the end; returns each mode's generations (fast, general), TLB misses and L2 hits.

    `words_at_once`: the fast path chooses L2 victims by order words from the first fill of a generation, where
    it would otherwise use the stamps until a generation has lasted SETTLED misses (fast_miss.l2_victim)."""

    def prepare(fast, general):
        general.fast_misses = False
        fast.st[ST_FAST_MISS] = 2 if words_at_once else 1

    out = {}
    for mode in modes:
        fast, general, _ = run_side_by_side(ops, config, mode, chunk, prepare, arrays)
        c = fast.counters()
        out[mode] = (generations(fast), generations(general), c["tlb_misses"], c["tlb_l2_hits"])
    return out


def assert_fast_path_ran(runs: dict) -> None:
    """Every mode takes most of its misses fast."""
    for mode, (fast, general, misses, _) in runs.items():
        assert misses > 100, f"{mode}: a stream with few misses: {runs}"
        assert fast < general / 2, f"{mode}: the fast path took few misses: {runs}"


def scattered(n: int, footprint: int, writes: float, seed: int = 7) -> np.ndarray:
    """A mapped region touched at n random places, a share of them writes: faults, misses, hits and assists."""
    rng = np.random.default_rng(seed)
    base = 0x7F00_0000_0000
    touches = O.accesses(np.uint64(base) + rng.integers(0, footprint // 8, n).astype(np.uint64) * np.uint64(8))
    touches["rw"] = np.where(rng.random(n) < writes, O.WRITE, O.READ)
    return O.concat([O.mmap(1, base, footprint), touches])


GEOMETRIES = [
    ("ChampSim TLBs (order words)", CHAMPSIM),
    ("modern TLBs (72-way L1, 24-way L2)", MODERN_WIDE),
    ("small TLBs", SMALL_TLB),
    ("no walk caches, 5 levels", {**CHAMPSIM, "pwc.enabled": False, "guest.levels": 5, "host.levels": 5}),
]


@pytest.mark.parametrize("label,geometry", GEOMETRIES, ids=[g[0] for g in GEOMETRIES])
@pytest.mark.parametrize("words_at_once", [True, False], ids=["order words at once", "order words once settled"])
def test_scattered_accesses_leave_the_same_machines(label, geometry, words_at_once):
    ops = scattered(20_000, 16 << 20, writes=0.3)
    assert_fast_path_ran(run_both(ops, cfg_from({**WALKS, **geometry}), chunk=4999, words_at_once=words_at_once))


WORKLOADS = [
    ("kcompile", dict(jobs=1), {}),  # processes with PCIDs and global kernel pages, fork, exec, exit, COW
    ("kcompile", dict(jobs=1), {"guest.page": "2m", "host.page": "4k"}),  # large guest pages, splintered in nested
    ("webserver", dict(workers=3, footprint=1 << 20, accesses=3000), {"host.page": "2m"}),
    ("mmapchurn", dict(accesses=1500), {"guest.pcid": False}),
]


@pytest.mark.parametrize("name,params,overrides", WORKLOADS)
def test_workloads_leave_the_same_machines(name, params, overrides):
    ops = np.concatenate(list(make_workload(name, **params).chunks()))
    assert_fast_path_ran(run_both(ops, cfg_from({**WALKS, **CHAMPSIM, **overrides}), chunk=997))


def test_large_pages_end_the_fast_path_and_it_stays_exact():
    """Once a 2 MiB page is in the TLBs every miss takes the general path; 4 KiB misses before it took the fast one."""
    base = 0x7F00_0000_0000
    small = scattered(3000, 8 << 20, writes=0.2)
    huge = O.concat([O.mmap(1, base + (1 << 30), 8 << 20, huge=True),
                     O.accesses(np.uint64(base + (1 << 30)) + np.arange(0, 8 << 20, 4096, dtype=np.uint64))])
    ops = O.concat([small, huge, small[1:]])
    runs = run_both(ops, cfg_from({**WALKS, **CHAMPSIM, "guest.page": "2m"}), chunk=1501)
    for mode, (fast, general, _, _) in runs.items():
        assert fast < general, (mode, runs)


def test_the_full_cache_model_never_takes_it():
    """With the data caches on, every miss takes the general path (a new generation each); with them off,
    few do. The second pass over the same pages has no faults, so misses are all that start generations."""
    ops = scattered(8000, 32 << 20, writes=0.1)
    for overrides, most in (({}, False), (WALKS, True)):
        m = Machine("native", cfg_from({**CHAMPSIM, **overrides}))
        m.run(ops)
        before, misses = generations(m), m.counters()["tlb_misses"]
        m.run(ops[1:])
        gens, misses = generations(m) - before, m.counters()["tlb_misses"] - misses
        assert misses > 500
        assert gens < misses / 10 if most else gens > misses, (overrides, gens, misses)


@settings(max_examples=60, deadline=None)
@given(st.data(), st.sampled_from([("4k", "4k"), ("2m", "4k"), ("4k", "2m")]), st.booleans())
def test_fast_misses_on_random_streams(data, pages, small):
    ops = data.draw(op_streams(max_ops=60))
    config = cfg_from({**WALKS, **(SMALL_TLB if small else CHAMPSIM), "guest.page": pages[0], "host.page": pages[1],
                       "guest.mem_gib": 1})
    run_both(ops, config, chunk=data.draw(st.sampled_from([1, 7, 1000])), words_at_once=data.draw(st.booleans()))
