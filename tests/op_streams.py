"""A hypothesis strategy for valid op streams mixing accesses with the guest OS's ops."""

from __future__ import annotations

from hypothesis import strategies as st
from machine_helpers import BASE
from rvi_tui.workloads import ops as O

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
