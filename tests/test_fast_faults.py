"""The fast fault path (engine/fast_fault.py) against the Python handlers alone.

The batch kernel handles the common faults itself (a read fault mapping the zero page, its injected form under
shadow paging, a hidden fault filling a leaf SPTE); with it switched off every fault goes to Python. The same
streams, run both ways, must leave every machine in the same state after every chunk: every counter, every
software event noted, every TLB and cache entry, every guest and host table entry, the host's backing, the
guest's processes and page references, and every shadow page with its sync state, stale entries and flooding
count (machine_helpers.machine_state). Each test also checks that the fast path did take faults, so that it
cannot pass by never running.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from machine_helpers import SMALL_TLB, cfg_from, run_side_by_side
from op_streams import op_streams
from rvi_tui.engine import config as C
from rvi_tui.engine.layout import SW_FAST
from rvi_tui.engine.machine import Machine
from rvi_tui.engine.session import ALL_MODES
from rvi_tui.workloads.registry import make_workload


SMALL_CACHES = {"cache.l1d_kib": 4, "cache.l2_kib": 16, "cache.l3_kib": 64}  # data caches a stream can fill


def python_trips(machine: Machine) -> list[int]:
    """Count the faults the machine's Python handlers take, from now on (the count is the list's one item)."""
    trips = [0]
    handle = machine.mode.handle

    def counted(code, stop):
        trips[0] += 1
        handle(code, stop)

    machine.mode.handle = counted
    return trips


def arrays(m: Machine) -> list[np.ndarray]:
    """The arrays that hold a machine's state, raw: counters, the software state the fast path shares, the guest's
    and the host's table pages and frames, the page references, the host's backing, the shadow pages, the
    hardware's caches. Two machines that did the same work hold the same bytes."""
    sw = m.sw.copy()
    sw[SW_FAST] = 0
    return [m.cnt, sw, m.st, m.gmem.tables, m.gmem.rows, m.gmem.pool, m.host.mem.tables, m.host.mem.rows,
            m.host.mem.pool, m.os.pages.counts, m.host.backed, m.mode.meta, m.mode.gfn_pages, m.mmu.c]


def cow_trips(machine: Machine) -> list[int]:
    """Count the copy-on-write faults the machine's guest OS handles in Python, from now on."""
    trips = [0]
    cow = machine.os._cow

    def counted(*args):
        trips[0] += 1
        cow(*args)

    machine.os._cow = counted
    return trips


def run_both(ops: np.ndarray, config, chunk: int, modes=ALL_MODES, trips_of=python_trips) -> dict[str, tuple[int, int]]:
    """Run ops chunk by chunk on each mode's pair, comparing their raw arrays after every chunk and their whole
    states (machine_helpers.machine_state) at the end; returns each mode's Python fault handler calls (fast,
    slow), or what trips_of counts."""

    def prepare(fast, slow):
        slow.fast_faults = False
        return trips_of(fast), trips_of(slow)

    trips = {}
    for mode in modes:
        _, _, counts = run_side_by_side(ops, config, mode, chunk, prepare, arrays)
        trips[mode] = (counts[0][0], counts[1][0])
    return trips


WORKLOADS = [
    ("random", dict(footprint=64 << 20, accesses=3000), {"guest.levels": 5, "host.levels": 5}),
    ("kcompile", dict(jobs=1), {}),
    ("kcompile", dict(jobs=1), {"shadow.unsync": False, "shadow.prefetch": 1, "shadow.max_pages": 64}),
    ("kcompile", dict(jobs=1), {"guest.page": "2m", "host.page": "4k"}),
    ("webserver", dict(workers=3, footprint=1 << 20, accesses=3000), {"host.page": "2m"}),
    ("mmapchurn", dict(accesses=1500), {"guest.pcid": False}),
]


@pytest.mark.parametrize("name,params,overrides", WORKLOADS)
def test_fast_path_and_python_handlers_leave_the_same_machines(name, params, overrides):
    ops = np.concatenate(list(make_workload(name, **params).chunks()))
    trips = run_both(ops, C.load(overrides=overrides), chunk=997)
    fast, slow = (sum(t[i] for t in trips.values()) for i in (0, 1))
    assert fast < slow, f"the fast path took no fault (Python handler calls by mode, fast and not: {trips})"


def test_copy_on_write_under_shadow_paging_is_a_fast_fault():
    """After fork a write to a shared page under shadow paging is injected, the guest copies the page, its store
    to its (unsync) table only makes the shadow entry stale and its INVLPG exits and syncs that entry: all in
    compiled code, with the same machine as the Python handlers leave."""
    ops = np.concatenate(list(make_workload("kcompile", jobs=2).chunks()))
    (fast, slow), = run_both(ops, C.load(), chunk=4001, modes=("shadow",), trips_of=cow_trips).values()
    assert slow > 100 and fast < slow / 4, (fast, slow)


@settings(max_examples=60, deadline=None)
@given(st.data(), st.sampled_from([("4k", "4k"), ("2m", "4k"), ("4k", "2m")]), st.booleans())
def test_fast_path_on_random_streams(data, pages, unsync):
    ops = data.draw(op_streams(max_ops=60))
    config = cfg_from({**SMALL_TLB, **SMALL_CACHES, "guest.page": pages[0], "host.page": pages[1], "guest.mem_gib": 1,
                       "shadow.unsync": unsync, "shadow.prefetch": data.draw(st.sampled_from([1, 8]))})
    run_both(ops, config, chunk=1)
