"""The engine's native and nested walks against the bench's bare walkers, an independent minimal kernel.

`engine.bench._bare` is written apart from the engine (2-D arrays, its own LRU, walk-cache and nested-TLB
code) and only reads the engine's page tables: on the same stream the engine's native mode, and its nested
mode, must count the same TLB hits and misses and the same walk references as its 1D and its 2D walk.
"""

from __future__ import annotations

import numpy as np
import pytest
from rvi_tui.engine import bench
from rvi_tui.engine import config as C


CASES = [
    ("native", ()),
    ("native", ("guest.levels=5",)),
    ("native", ("pwc.enabled=false",)),
    ("native", ("pwc.l2_entries=8", "pwc.l2_ways=2", "tlb.l2.entries=64", "tlb.l2.ways=4")),
    ("nested", ()),
    ("nested", ("guest.levels=5", "host.levels=5")),
    ("nested", ("ntlb.enabled=false",)),
    ("nested", ("pwc.enabled=false", "nwc.enabled=false")),
    ("nested", ("ntlb.entries=8", "ntlb.ways=2", "nwc.l2_entries=8", "nwc.l2_ways=2", "tlb.l2.entries=64",
                "tlb.l2.ways=4")),
]


@pytest.mark.parametrize("mode,sets", CASES)
@pytest.mark.parametrize("stream", ["random", "seq"])
def test_walks_match_the_bare_walkers(mode, sets, stream):
    config = C.load("modern", bench.BENCH_SETS + bench.MODELS["walks"] + sets)
    if stream == "random":
        addrs = bench.random_stream(50_000, footprint=64 << 20, seed=3)
    else:
        addrs = 0x7F00_0000_0000 + np.arange(120_000, dtype=np.int64) * 520  # 15,000 pages in order
    machine = bench.warmed_machine(mode, config, addrs)
    engine = bench.time_machine(machine, addrs)
    bare = bench.bare_baseline(config, addrs, machine)
    assert engine["misses"] > 1000  # the walker has work to check
    if mode == "nested":
        assert engine["walk_refs"] > engine["misses"]  # and both dimensions of it
    for key in ("l1_hits", "l2_hits", "misses", "walk_refs"):
        assert engine[key] == bare[key], key
    assert bench.bare_baseline(config, addrs)["misses"] == engine["misses"]  # the TLB alone, no tables


def test_the_bare_2d_walker_leaves_out_large_host_pages():
    config = C.load("modern", bench.BENCH_SETS + bench.MODELS["walks"] + ("host.page=2m",))
    addrs = bench.random_stream(2_000, footprint=8 << 20, seed=5)
    assert bench.bare_baseline(config, addrs, bench.warmed_machine("nested", config, addrs)) is None
