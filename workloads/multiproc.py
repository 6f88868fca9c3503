"""Several workloads as processes of one guest, time-sliced by context switches.

Each workload becomes one process: pid 1 forks it, the child execs (an empty
address space) and runs its first slice (which maps its memory); from then on
the processes take turns for ``slice_ops`` ops each, a SWITCH before every
turn that changes process. A process whose stream ends exits. The context switches and the per-process address spaces
are what separate shadow paging (a CR3 load exits) from nested paging.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from . import ops
from .base import DEFAULT_CHUNK, Workload, check_chunk_ops, rechunk
from .errors import WorkloadError
from .synthetic import PATTERNS

# Kinds a single-process stream may contain: anything else would need its own pids.
_SINGLE_PROCESS_KINDS = np.array([ops.ACCESS, ops.MMAP, ops.MUNMAP], dtype=np.uint8)
# schedule events
_CREATE, _SLICE, _SWITCH, _EXIT = range(4)


class RoundRobin(Workload):
    """Single-process workloads run as pids 2, 3, ... of one guest, ``slice_ops`` ops per turn."""

    def __init__(self, workloads: Sequence[Workload], slice_ops: int, *, name: str = "round-robin",
                 description: str | None = None):
        if not workloads:
            raise WorkloadError("round_robin needs at least one workload")
        if int(slice_ops) < 1:
            raise WorkloadError(f"slice must be at least 1 op, not {slice_ops}")
        self.workloads = list(workloads)
        self.slice_ops = int(slice_ops)
        self.pids = list(range(2, 2 + len(self.workloads)))
        self.name = name
        self.description = description or (
            "round robin of " + ", ".join(w.name for w in self.workloads) + f" ({self.slice_ops} ops per slice)")
        self._n_ops: int | None = None

    @property
    def n_ops(self) -> int | None:
        lengths = [w.n_ops for w in self.workloads]
        if any(n is None for n in lengths):
            return None
        if self._n_ops is None:
            self._n_ops = self._count(lengths)
        return self._n_ops

    def _schedule(self, has_turn: Callable[[int], bool]) -> Iterator[tuple[int, int]]:
        """The stream's events in order: (CREATE, i), (SLICE, i), (EXIT, i) for workload i, (SWITCH, pid).

        ``has_turn(i)`` says whether workload i has ops left; the consumer of a
        SLICE event advances it before asking for the next event.
        """
        current = 1
        live: deque[int] = deque()

        def turn(i: int) -> Iterator[tuple[int, int]]:
            nonlocal current
            if has_turn(i):
                if current != self.pids[i]:
                    yield _SWITCH, self.pids[i]
                    current = self.pids[i]
                yield _SLICE, i
            if has_turn(i):
                live.append(i)
            else:
                yield _EXIT, i

        for i, pid in enumerate(self.pids):
            if current != 1:
                yield _SWITCH, 1
            yield _CREATE, i
            current = pid
            yield from turn(i)  # the child runs as soon as it has exec'ed, mapping its memory
        while live:
            yield from turn(live.popleft())
        yield _SWITCH, 1

    def _count(self, lengths: list[int]) -> int:
        """The length of the stream for workloads of these lengths, from the schedule alone."""
        turns = [-(-length // self.slice_ops) for length in lengths]
        n = sum(lengths)
        for event, who in self._schedule(lambda i: turns[i] > 0):
            if event == _SLICE:
                turns[who] -= 1
            else:
                n += 3 if event == _CREATE else 1
        return n

    def chunks(self, chunk_ops: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
        return rechunk(self._ops(), check_chunk_ops(chunk_ops))

    def _ops(self) -> Iterator[np.ndarray]:
        streams = [w.chunks(self.slice_ops) for w in self.workloads]
        pending = [next(s, None) for s in streams]
        for event, who in self._schedule(lambda i: pending[i] is not None):
            if event == _SLICE:
                yield self._adopt(pending[who], self.pids[who])
                pending[who] = next(streams[who], None)
            elif event == _SWITCH:
                yield ops.switch(who)
            elif event == _CREATE:
                pid = self.pids[who]
                yield ops.concat([ops.fork(1, pid), ops.switch(pid), ops.exec_(pid)])
            else:
                yield ops.exit_(self.pids[who])

    def _adopt(self, chunk: np.ndarray, pid: int) -> np.ndarray:
        if not np.isin(chunk["kind"], _SINGLE_PROCESS_KINDS).all():
            raise WorkloadError("round_robin takes single-process workloads only (ACCESS, MMAP and MUNMAP ops); "
                                f"{self.workloads[pid - 2].name!r} forks, execs, exits or switches")
        out = chunk.copy()
        out["pid"] = pid
        return out


def round_robin(workloads: Sequence[Workload], slice_ops: int) -> Workload:
    """Run several single-process workloads (e.g. traces) as processes of one guest, time-sliced."""
    return RoundRobin(workloads, slice_ops)


def multi(*, procs: int = 4, pattern: str = "random", footprint: int | None = None, accesses: int | None = None,
          seed: int = 1, slice: int = 10_000, write_frac: float | None = None) -> Workload:
    """``procs`` processes each running ``pattern`` over its own footprint; ``accesses`` is the total, shared evenly."""
    procs = int(procs)
    if not 1 <= procs <= 4096:
        raise WorkloadError(f"procs must be between 1 and 4096, not {procs}")
    if pattern not in PATTERNS:
        raise WorkloadError(f"unknown pattern {pattern!r} (known: {', '.join(PATTERNS)})")
    if int(seed) < 0:
        raise WorkloadError(f"seed must be a non-negative integer, not {seed}")
    cls = PATTERNS[pattern]
    total = 1_000_000 if accesses is None else int(accesses)
    if total < procs:
        raise WorkloadError(f"accesses must be at least one per process ({procs}), not {total}")
    share, extra = divmod(total, procs)
    common = {k: v for k, v in (("footprint", footprint), ("write_frac", write_frac)) if v is not None}
    seeds = np.random.SeedSequence([int(seed), procs]).generate_state(procs, dtype=np.uint32)
    workloads = [cls(accesses=share + (i < extra), seed=int(seeds[i]), **common) for i in range(procs)]
    return RoundRobin(
        workloads, slice, name="multi",
        description=f"{procs} processes, each running '{pattern}' in its own address space, "
                    f"time-sliced every {int(slice)} ops")
