"""Lockstep: several machines, one per mode, fed the same op stream.

Switching the mode a user looks at changes which machine is shown, never the
history, so counters always compare like with like. A session pulls chunks
from a workload lazily and runs them through every machine, either one op at
a time with events (``step``) or in batches (``run``).

A session made with ``history=True`` also keeps a ``Timeline`` (the ops it
ran, checkpoints, an event index): ``seek`` then goes to any op, back or
forward, exactly, and ``find`` searches for the next or previous op with an
event of a kind. Going back, jumping and searching are the session's job; a
UI asks for an op and shows what it gets.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from ..workloads import ops as O
from .config import Config
from .layout import ST_MAX_WALK
from .machine import Machine
from .snapshot import MachineSnapshot
from .timeline import BUCKET, EventKind, Timeline, machine_totals

ALL_MODES = ("native", "shadow", "nested")


class Session:
    def __init__(self, chunks: Iterable[np.ndarray], config: Config, modes: Iterable[str] = ALL_MODES,
                 total_ops: int | None = None, warmup_ops: int = 0, history: bool = False):
        """warmup_ops: at that op the counters restart (``reset_counters``), however the session got there.
        history: keep a Timeline, for ``seek`` and ``find``."""
        self.config = config
        self.machines = {name: Machine(name, config) for name in modes}
        self.modes = tuple(self.machines)
        self.total_ops = total_ops
        self.warmup_ops = int(warmup_ops)
        self.warmup_done = False
        self._chunks: Iterator[np.ndarray] = iter(chunks)
        self._chunk = O.empty(0)
        self._pos = 0
        self.ops_done = 0
        self.finished = False  # the workload has no more ops (see at_end)
        self.last_op: np.ndarray | None = None  # the last op run (a length-1 array)
        self.last_access: int = 0  # the virtual address of the last ACCESS op
        self.timeline = Timeline(self.modes) if history else None
        if self.timeline is not None:
            self._checkpoint()

    # --- the op stream ----------------------------------------------------------------------------
    def _take(self, n: int) -> np.ndarray:
        """Up to n next ops of the stream (fewer at its end); from the tape when the session went back."""
        t = self.timeline
        if t is not None and self.ops_done < len(t.tape):
            return t.tape.slice(self.ops_done, self.ops_done + n)
        while self._pos >= len(self._chunk):
            try:
                self._chunk = next(self._chunks)
            except StopIteration:
                self.finished = True
                self.total_ops = self.ops_done
                return O.empty(0)
            self._pos = 0
        part = self._chunk[self._pos : self._pos + n]
        self._pos += len(part)
        if t is not None:
            t.tape.append(part)
        return part

    @property
    def frontier(self) -> int:
        """How far the session has ever run (ops)."""
        return len(self.timeline.tape) if self.timeline is not None else self.ops_done

    @property
    def at_end(self) -> bool:
        return self.finished and self.ops_done >= self.frontier

    def ops(self, start: int, stop: int) -> np.ndarray:
        """Ops [start, stop) of those run so far (a history session)."""
        return self.timeline.tape.slice(start, stop)

    def _advance(self, ops: np.ndarray) -> None:
        self.ops_done += len(ops)
        self.last_op = ops[-1:]
        access = np.nonzero(ops["kind"] == O.ACCESS)[0]
        if len(access):
            self.last_access = int(ops["addr"][access[-1]])
        if self.ops_done == self.warmup_ops and not self.warmup_done:
            self.reset_counters()
            self.warmup_done = True
        t = self.timeline
        if t is not None:
            if self.ops_done % BUCKET == 0 and self.ops_done // BUCKET == t.index.n_rows:
                t.index.add(np.stack([machine_totals(m) for m in self.machines.values()]),
                            np.array([m.st[ST_MAX_WALK] for m in self.machines.values()]))
            if self.ops_done % BUCKET == 0:
                for m in self.machines.values():
                    m.st[ST_MAX_WALK] = 0
            if t.wants_checkpoint(self.ops_done):
                self._checkpoint()

    def _next_stop(self) -> int:
        """Ops until the session must pause between ops: the warm-up's end, an index bucket, a checkpoint."""
        stops = []
        if self.warmup_ops > self.ops_done and not self.warmup_done:
            stops.append(self.warmup_ops - self.ops_done)
        if self.timeline is not None:
            stops.append(BUCKET - self.ops_done % BUCKET)
        return min(stops, default=1 << 62)

    # --- running --------------------------------------------------------------------------------
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
            ops = self._take(min(max_ops - done, self._next_stop()))
            if not len(ops):
                break
            for m in self.machines.values():
                m.run(ops)
            self._advance(ops)
            done += len(ops)
        if self.timeline is not None:
            self.timeline.move_anchor(self.ops_done)
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
            m.reset_counters()

    def counters(self) -> dict[str, dict[str, int]]:
        return {name: m.counters() for name, m in self.machines.items()}

    def snapshot(self, mode: str) -> MachineSnapshot:
        return self.machines[mode].snapshot(self.last_access)

    # --- time (history sessions) ---------------------------------------------------------------------
    _CURSOR = ("ops_done", "last_op", "last_access", "warmup_done")

    def _checkpoint(self) -> None:
        self.timeline.take(self.ops_done, {"machines": self.machines,
                                           "cursor": {k: getattr(self, k) for k in self._CURSOR}})

    def seek(self, op: int) -> int:
        """Go to the state after `op` ops (back or forward), exactly; returns the op reached (less than `op`
        only at the end of the stream)."""
        for _ in self.seeking(op):
            pass
        return self.ops_done

    def seeking(self, op: int, chunk: int = 2048):
        """``seek`` as a generator that yields the op reached after each `chunk` ops replayed (a caller can
        let others at the session in between, or stop: the session is then at the op last yielded)."""
        op = max(0, int(op))
        if op != self.ops_done:
            cp = self.timeline.nearest(op)
            if op < self.ops_done or (cp is not None and cp.op > self.ops_done):
                state = cp.state()
                self.machines = state["machines"]
                for key, value in state["cursor"].items():
                    setattr(self, key, value)
            while self.ops_done < op and self.run(min(chunk, op - self.ops_done)):
                yield self.ops_done
        self.timeline.move_anchor(self.ops_done)

    def find(self, kind: EventKind, mode: str, forward: bool = True):
        """Search for the next (or previous) op with an event of `kind` in `mode`'s machine, from the op the
        session is at. A generator: it yields the op it has searched up to, now and then (a caller may stop
        it there: the session is then left wherever the search was, and should seek back), and returns the
        op found (the session at it, that op just run) or None (the session back where it started)."""
        start = self.ops_done
        found = yield from (self._find_forward(kind, mode) if forward else self._find_back(kind, mode, start))
        self.seek(start if found is None else found)
        return found

    def _op_has(self, kind: EventKind, mode: str, col: int) -> bool:
        """Run one op; whether it was an event of `kind`."""
        machine = self.machines[mode]
        if kind.by_length:  # this op's longest walk, keeping the bucket's for the index
            longest, machine.st[ST_MAX_WALK] = machine.st[ST_MAX_WALK], 0
            if self.run(1) != 1:
                return False
            st = self.machines[mode].st
            hit = st[ST_MAX_WALK] >= kind.min_refs
            if self.ops_done % BUCKET:  # at a bucket's end the index took it and cleared it
                st[ST_MAX_WALK] = max(longest, st[ST_MAX_WALK])
            return bool(hit)
        before = machine_totals(machine)[col]
        if self.run(1) != 1:
            return False
        if kind.name == "os":
            return kind.matches_op(self.last_op[0])
        return machine_totals(self.machines[mode])[col] - before > 0

    def event_buckets(self, kind: EventKind, mode: str) -> np.ndarray:
        """Whether each indexed bucket holds an event of `kind` (may, for OS kinds: any OS op)."""
        if kind.by_length:
            return self.timeline.index.longest_walks(mode) >= kind.min_refs
        return self.timeline.index.deltas(mode, kind.column()) > 0

    def _scan(self, kind: EventKind, mode: str, stop: int, last: bool):
        """Run op by op up to op `stop`; the first (or, with last, the last) op that is an event, or None."""
        from .timeline import COLUMN

        col = COLUMN[kind.column()]
        hit = None
        while self.ops_done < stop and not self.at_end:
            if self._op_has(kind, mode, col):
                hit = self.ops_done
                if not last:
                    return hit
        return hit

    def _find_forward(self, kind: EventKind, mode: str):
        bucket_end = (self.ops_done // BUCKET + 1) * BUCKET
        found = self._scan(kind, mode, bucket_end, last=False)
        if found is not None:
            return found
        yield self.ops_done
        while not self.at_end:
            b = self.ops_done // BUCKET
            candidates = self.event_buckets(kind, mode)
            if b < len(candidates):  # indexed: jump to the next bucket that may hold one
                later = np.flatnonzero(candidates[b:])
                if not len(later):
                    self.seek(len(candidates) * BUCKET)
                    yield self.ops_done
                    continue
                self.seek((b + later[0]) * BUCKET)
            else:  # past the index: run a bucket in batch, then scan it if it held one
                start = self.ops_done
                self.run(BUCKET - start % BUCKET)
                candidates = self.event_buckets(kind, mode)
                partial = self.at_end and self.ops_done % BUCKET  # the stream's last bucket is never indexed
                if not partial and (b >= len(candidates) or not candidates[b]):
                    yield self.ops_done
                    continue
                self.seek(start)
            found = self._scan(kind, mode, (self.ops_done // BUCKET + 1) * BUCKET, last=False)
            if found is not None:
                return found
            yield self.ops_done
        return None

    def _find_back(self, kind: EventKind, mode: str, start: int):
        if start == 0:
            return None
        bucket = (start - 1) // BUCKET
        self.seek(bucket * BUCKET)
        found = self._scan(kind, mode, start - 1, last=True)  # ops before the current one
        while found is None:
            yield bucket * BUCKET
            earlier = np.flatnonzero(self.event_buckets(kind, mode)[:bucket])
            if not len(earlier):
                return None
            bucket = int(earlier[-1])
            self.seek(bucket * BUCKET)
            found = self._scan(kind, mode, (bucket + 1) * BUCKET, last=True)
        return found
