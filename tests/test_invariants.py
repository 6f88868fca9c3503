"""Functional invariants on random op streams (hypothesis).

* every mode translates every access to the same host-physical address;
* a TLB hit always gives what a fresh walk of the guest table would;
* step and batch give identical counters;
* shadow tables stay consistent with the guest's after every op.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from machine_helpers import BASE, SMALL_TLB, assert_no_entry_twice, cfg_from, mmap_ops
from op_streams import op_streams
from rvi_tui.engine.events import Translated
from rvi_tui.engine.machine import Machine
from rvi_tui.workloads import ops as O
from shadow_checker import check_shadow

MODES = ("native", "shadow", "nested")


def config_for(guest_page, host_page, unsync=True, flooding=True):
    return cfg_from({**SMALL_TLB, "guest.page": guest_page, "host.page": host_page, "guest.mem_gib": 1,
                     "shadow.unsync": unsync, "shadow.flooding": flooding})


def fresh_walk(machine, va: int) -> int | None:
    """Host-physical address of va by a software walk of the current guest table (None if unmapped)."""
    found = machine.os.current.table.lookup(va)
    if found is None:
        return None
    frame, size, _ = found
    gpa = (frame << 12) | (va & ((1 << (12 + 9 * size)) - 1))
    return machine.placement(gpa)


@settings(max_examples=40, deadline=None)
@given(op_streams(), st.sampled_from([("4k", "4k"), ("2m", "4k"), ("4k", "2m"), ("2m", "2m"), ("4k", "1g"), ("2m", "1g")]),
       st.booleans(), st.booleans())
def test_modes_agree_and_tlb_hits_match_fresh_walks(ops, pages, unsync, flooding):
    config = config_for(*pages, unsync, flooding)
    machines = {m: Machine(m, config) for m in MODES}
    for i in range(len(ops)):
        op = ops[i : i + 1]
        results = {}
        for name, machine in machines.items():
            events = machine.step(op)
            done = [e for e in events if isinstance(e, Translated)]
            if int(op["kind"][0]) == O.ACCESS:
                last = done[-1]
                hpa = machine.placement(last.paddr) if name == "native" else last.paddr
                results[name] = hpa
                va = int(op["addr"][0])
                if last.via in ("L1", "L2"):
                    assert hpa == fresh_walk(machine, va), f"{name}: TLB hit disagrees with a fresh walk"
        if results:
            assert len(set(results.values())) == 1, f"op {i}: modes disagree: {results}"
        check_shadow(machines["shadow"])
        for machine in machines.values():
            assert_no_entry_twice(machine)
    # the batch path over the same stream gives the same counters
    for name, machine in machines.items():
        batch = Machine(name, config)
        batch.run(ops)
        assert batch.counters() == machine.counters(), name


@settings(max_examples=10, deadline=None)
@given(op_streams(max_ops=120), st.integers(1, 7))
def test_chunking_does_not_change_counters(ops, pieces):
    config = config_for("4k", "4k")
    whole = Machine("shadow", config)
    whole.run(ops)
    split = Machine("shadow", config)
    for part in np.array_split(ops, pieces):
        split.run(part)
    assert whole.counters() == split.counters()


# A tiny L1 TLB and tiny data caches, so that the batch path's remembered L1 entries and L1D line
# keep meeting set conflicts, pages of every size, and writes to clean entries.
TINY = {**SMALL_TLB, "tlb.l1_4k.entries": 4, "tlb.l1_4k.ways": 2, "tlb.l1_2m.entries": 2,
        "tlb.l1_2m.ways": 1, "cache.l1d_kib": 1, "cache.l1d_ways": 2, "cache.l2_kib": 2,
        "cache.l2_ways": 2, "cache.l3_kib": 4, "cache.l3_ways": 2, "guest.mem_gib": 1}


def batch_and_stepped(mode, config, ops):
    """Two machines after the same ops: one run as a batch, one stepped op by op."""
    batch = Machine(mode, config)
    batch.run(ops)
    stepped = Machine(mode, config)
    for i in range(len(ops)):
        stepped.step(ops[i : i + 1])
    return batch, stepped


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 15), st.sampled_from([O.READ, O.WRITE, O.FETCH])),
                min_size=1, max_size=400),
       st.sampled_from(["4k", "2m"]), st.sampled_from(MODES))
def test_batch_fast_path_gives_the_step_paths_counters(accesses, guest_page, mode):
    """Batch serves repeated L1 hits without probing and repeated lines without a cache lookup;
    the step path never does: both must count the same hits, misses and cycles."""
    config = cfg_from({**TINY, "guest.page": guest_page})
    # six pages over two L1 sets of two ways (and three 2 MiB pages); sixteen lines over few L1D sets
    addrs = [BASE + (page % 3) * (1 << 21) + (page // 3) * 4096 + line * 1024 for page, line, _ in accesses]
    ops = O.concat([mmap_ops(1 << 24, huge=guest_page == "2m"), O.accesses(addrs)])
    ops["rw"][-len(accesses):] = [rw for _, _, rw in accesses]
    batch, stepped = batch_and_stepped(mode, config, ops)
    assert batch.counters() == stepped.counters()
    assert_no_entry_twice(batch)


def test_batch_fast_path_forgets_an_entry_another_hit_displaced():
    """Pages 0, 1, 2 share one 2-way L1 set. After 0 1 0 1 0, page 1 hit last but 0 is the most
    recent; 2 then evicts 1, not 0. True LRU, worked by hand: 0 and 1 miss cold, five L1 hits,
    2 misses cold and evicts 1; 0 hits; 1 comes back from L2 and evicts 2; 2 comes back from L2
    and evicts 0; 0 comes back from L2: six L1 hits, three L2 hits, three misses."""
    config = cfg_from({**TINY, "guest.page": "4k"})
    pages = [0, 1, 0, 1, 0, 1, 0, 2, 0, 1, 2, 0]
    addrs = [BASE + page * (1 << 21) for page in pages]  # 2 MiB apart: the same L1 set
    ops = O.concat([mmap_ops(1 << 24, huge=False), O.accesses(addrs)])
    for run, machine in zip(("batch", "step"), batch_and_stepped("native", config, ops)):
        c = machine.counters()
        assert (c["tlb_l1_hits"], c["tlb_l2_hits"], c["tlb_misses"]) == (6, 3, 3), run


@pytest.mark.parametrize("mode", MODES)
def test_batch_fast_path_forgets_its_line_after_a_walk(mode):
    """Read a line twice (the second read hits it again without a cache lookup), write another
    line of the page (a clean entry: the walk's references fill the same L1D set and push the
    first line out), read the first line again: a data-cache miss in both paths."""
    config = cfg_from({**TINY, "guest.page": "4k"})
    ops = O.concat([mmap_ops(1 << 24, huge=False), O.accesses([BASE, BASE, BASE + 1024, BASE])])
    ops["rw"][-4:] = [O.READ, O.READ, O.WRITE, O.READ]
    batch, stepped = batch_and_stepped(mode, config, ops)
    assert batch.counters() == stepped.counters()
