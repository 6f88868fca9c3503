"""The engine's native walks against the bench's bare walker, an independent minimal kernel.

`engine.bench._bare_native` is written apart from the engine (2-D arrays, its own LRU and
paging-structure-cache code) and only reads the engine's page tables: on the same stream the
engine's native mode must count the same TLB hits and misses and the same walk references.
"""

from __future__ import annotations

import numpy as np
import pytest
from rvi_tui.engine import bench
from rvi_tui.engine import config as C


@pytest.mark.parametrize("sets", [
    (),
    ("guest.levels=5",),
    ("pwc.enabled=false",),
    ("pwc.l2_entries=8", "pwc.l2_ways=2", "tlb.l2.entries=64", "tlb.l2.ways=4"),
])
@pytest.mark.parametrize("stream", ["random", "seq"])
def test_native_walks_match_the_bare_walker(sets, stream):
    config = C.load("modern", bench.BENCH_SETS + bench.MODELS["walks"] + sets)
    if stream == "random":
        addrs = bench.random_stream(60_000, footprint=64 << 20, seed=3)
    else:
        addrs = 0x7F00_0000_0000 + np.arange(150_000, dtype=np.int64) * 520  # 19,000 pages in order
    machine = bench.warmed_machine("native", config, addrs)
    engine = bench.time_machine(machine, addrs)
    bare = bench.bare_baseline(config, addrs, machine)
    assert engine["misses"] > 1000  # the walker has work to check
    for key in ("l1_hits", "l2_hits", "misses", "walk_refs"):
        assert engine[key] == bare[key], key
    assert bench.bare_baseline(config, addrs)["misses"] == engine["misses"]  # the TLB alone, no tables
