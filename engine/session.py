"""Lockstep: several machines, one per mode, fed the same op stream.

Switching the mode a user looks at changes which machine is shown, never the
history, so counters always compare like with like. A session pulls chunks
from a workload lazily and runs them through every machine, either one op at
a time with events (``step``) or in batches (``run``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from ..workloads import ops as O
from .config import Config
from .counters import GAUGES, INDEX
from .machine import Machine
from .snapshot import MachineSnapshot

ALL_MODES = ("native", "shadow", "nested")


class Session:
    def __init__(self, chunks: Iterable[np.ndarray], config: Config, modes: Iterable[str] = ALL_MODES,
                 total_ops: int | None = None):
        self.config = config
        self.machines = {name: Machine(name, config) for name in modes}
        self.modes = tuple(self.machines)
        self.total_ops = total_ops
        self._chunks: Iterator[np.ndarray] = iter(chunks)
        self._chunk = O.empty(0)
        self._pos = 0
        self.ops_done = 0
        self.finished = False
        self.last_op: np.ndarray | None = None  # the last op run (a length-1 array)
        self.last_access: int = 0  # the virtual address of the last ACCESS op

    def _take(self, n: int) -> np.ndarray:
        """Up to n next ops of the stream (fewer at its end)."""
        while self._pos >= len(self._chunk):
            try:
                self._chunk = next(self._chunks)
            except StopIteration:
                self.finished = True
                return O.empty(0)
            self._pos = 0
        part = self._chunk[self._pos : self._pos + n]
        self._pos += len(part)
        return part

    def _advance(self, ops: np.ndarray) -> None:
        self.ops_done += len(ops)
        self.last_op = ops[-1:]
        access = np.nonzero(ops["kind"] == O.ACCESS)[0]
        if len(access):
            self.last_access = int(ops["addr"][access[-1]])

    def step(self) -> dict[str, list] | None:
        """Run the next op on every machine; its events per mode, or None at the end of the stream."""
        op = self._take(1)
        if not len(op):
            return None
        events = {name: m.step(op) for name, m in self.machines.items()}
        self._advance(op)
        return events

    def run(self, max_ops: int) -> int:
        """Run up to max_ops ops in batch; returns how many ran (0 at the end of the stream)."""
        done = 0
        while done < max_ops:
            ops = self._take(max_ops - done)
            if not len(ops):
                break
            for m in self.machines.values():
                m.run(ops)
            self._advance(ops)
            done += len(ops)
        return done

    def run_to_end(self) -> int:
        total = 0
        while True:
            n = self.run(1 << 16)
            if not n:
                return total
            total += n

    def reset_counters(self) -> None:
        """Forget the counts so far, keeping every machine's state (gauges too): the end of a warm-up."""
        for m in self.machines.values():
            kept = {name: m.cnt[INDEX[name]] for name in GAUGES}
            m.cnt[:] = 0
            for name, value in kept.items():
                m.cnt[INDEX[name]] = value

    def counters(self) -> dict[str, dict[str, int]]:
        return {name: m.counters() for name, m in self.machines.items()}

    def snapshot(self, mode: str) -> MachineSnapshot:
        return self.machines[mode].snapshot(self.last_access)
