"""Functional invariants on random op streams (hypothesis).

* every mode translates every access to the same host-physical address;
* a TLB hit always gives what a fresh walk of the guest table would;
* step and batch give identical counters;
* shadow tables stay consistent with the guest's after every op.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from machine_helpers import BASE, SMALL_TLB, cfg_from
from rvi_tui.engine.events import Translated
from rvi_tui.engine.machine import Machine
from rvi_tui.workloads import ops as O
from shadow_checker import check_shadow

MODES = ("native", "shadow", "nested")
REGION = 1 << 23  # each process maps up to 8 MiB, enough for 2 MiB pages


@st.composite
def op_streams(draw, max_ops=60):
    """A valid stream: accesses by the current process, mmaps, munmaps, forks, exits and switches."""
    live = [1]
    current = 1
    next_pid = 2
    parts = [O.mmap(1, BASE, REGION)]
    for _ in range(draw(st.integers(1, max_ops))):
        kind = draw(st.sampled_from(["access"] * 8 + ["fork", "switch", "exit", "munmap", "mmap"]))
        if kind == "access":
            page = draw(st.integers(0, REGION // 4096 - 1))
            write = draw(st.booleans())
            parts.append(O.accesses([BASE + page * 4096 + 8 * draw(st.integers(0, 511))],
                                    rw=O.WRITE if write else O.READ, pid=current))
        elif kind == "fork" and len(live) < 4:
            parts.append(O.op(O.FORK, pid=current, arg=next_pid))
            live.append(next_pid)
            next_pid += 1
        elif kind == "switch" and len(live) > 1:
            current = draw(st.sampled_from(live))
            parts.append(O.op(O.SWITCH, pid=current))
        elif kind == "exit" and len(live) > 1 and current != 1:
            parts.append(O.op(O.EXIT, pid=current))
            live.remove(current)
            current = 1
            parts.append(O.op(O.SWITCH, pid=1))
        elif kind == "munmap":
            start = draw(st.integers(0, REGION // 4096 - 1)) * 4096
            parts.append(O.op(O.MUNMAP, pid=current, addr=BASE + start, arg=draw(st.integers(1, 64)) * 4096))
        elif kind == "mmap":
            start = draw(st.integers(0, REGION // 4096 - 1)) * 4096
            parts.append(O.mmap(current, BASE + start, draw(st.integers(1, 600)) * 4096,
                                huge=draw(st.booleans())))
    return O.concat(parts)


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
@given(op_streams(), st.sampled_from([("4k", "4k"), ("2m", "4k"), ("4k", "2m"), ("2m", "2m")]),
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
