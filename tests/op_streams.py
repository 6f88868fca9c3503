"""Hypothesis strategies for valid op streams mixing accesses with the guest OS's ops."""

from __future__ import annotations

from hypothesis import strategies as st
from machine_helpers import BASE
from rvi_tui.workloads import ops as O

REGION = 1 << 23  # each process maps up to 8 MiB, enough for 2 MiB pages


class Processes:
    """The live processes of a stream being drawn, and the fork, switch and exit ops that keep it valid
    (pid 1 never exits; an exit switches back to it)."""

    def __init__(self, max_live: int):
        self.live = [1]
        self.current = 1
        self.next_pid = 2
        self.max_live = max_live

    def op(self, draw, kind: str) -> list:
        """The ops for `kind` (fork, switch or exit), or none where it cannot happen now."""
        if kind == "fork" and len(self.live) < self.max_live:
            self.live.append(self.next_pid)
            self.next_pid += 1
            return [O.op(O.FORK, pid=self.current, arg=self.live[-1])]
        if kind == "switch" and len(self.live) > 1:
            self.current = draw(st.sampled_from(self.live))
            return [O.op(O.SWITCH, pid=self.current)]
        if kind == "exit" and len(self.live) > 1 and self.current != 1:
            gone, self.current = self.current, 1
            self.live.remove(gone)
            return [O.op(O.EXIT, pid=gone), O.op(O.SWITCH, pid=1)]
        return []


@st.composite
def op_streams(draw, max_ops=60):
    """A valid stream: accesses by the current process, mmaps, munmaps, forks, exits and switches."""
    procs = Processes(max_live=4)
    parts = [O.mmap(1, BASE, REGION)]
    for _ in range(draw(st.integers(1, max_ops))):
        kind = draw(st.sampled_from(["access"] * 8 + ["fork", "switch", "exit", "munmap", "mmap"]))
        current = procs.current
        if kind == "access":
            page = draw(st.integers(0, REGION // 4096 - 1))
            write = draw(st.booleans())
            parts.append(O.accesses([BASE + page * 4096 + 8 * draw(st.integers(0, 511))],
                                    rw=O.WRITE if write else O.READ, pid=current))
        elif kind in ("fork", "switch", "exit"):
            parts.extend(procs.op(draw, kind))
        elif kind == "munmap":
            start = draw(st.integers(0, REGION // 4096 - 1)) * 4096
            parts.append(O.op(O.MUNMAP, pid=current, addr=BASE + start, arg=draw(st.integers(1, 64)) * 4096))
        elif kind == "mmap":
            start = draw(st.integers(0, REGION // 4096 - 1)) * 4096
            parts.append(O.mmap(current, BASE + start, draw(st.integers(1, 600)) * 4096,
                                huge=draw(st.booleans())))
    return O.concat(parts)
