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
from . import heap
from .config import Config
from .layout import ST_MAX_WALK
from .machine import Machine
from .snapshot import MachineSnapshot
from .timeline import BUCKET, HALVE_MIN, LADDER, NEAR, NEAR_SPAN, EventKind, Timeline, machine_totals

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
        t = self.timeline
        if t is not None:
            stops.append(BUCKET - self.ops_done % BUCKET)
            near = (max(self.ops_done, t.aim - NEAR_SPAN) // NEAR + 1) * NEAR  # the next op due a near checkpoint
            if t.in_near_span(near):
                stops.append(near - self.ops_done)
            stops += [op - self.ops_done for op in t.ladder if op > self.ops_done]
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

    def seeking(self, op: int, chunk: int = 2048, aim: int | None = None):
        """``seek`` as a generator that yields the op reached after each `chunk` ops replayed (a caller can
        let others at the session in between, or stop: the session is then at the op last yielded). It leaves
        checkpoints close below op `aim` (default `op`; see timeline.NEAR) as it runs past them, so that going
        back from there one op at a time is quick."""
        op = max(0, int(op))
        t = self.timeline
        aim = op if aim is None else aim
        moved, t.aim = abs(aim - t.aim), aim
        missing = []
        if moved > NEAR:  # a jump: from below the lowest near checkpoint missing, so going back finds them all
            t.ladder = {aim - d for d in LADDER if aim - d > 0}
            top = min(op, aim, self.frontier if self.finished else op)
            missing = [m for m in range(max(0, (aim - NEAR_SPAN) // NEAR * NEAR + NEAR), top + 1, NEAR)
                       if m not in t.checkpoints]
        yield from self._going(op, chunk, start=min([op, *missing]), halve=True)
        if moved > NEAR:
            # a jump's restore and replay made some 10^5 objects: collect them now, within the jump's time, so
            # that a full collection (50-130 ms) does not fall on one of the steps back that tend to follow,
            # and freeze the survivors, so that those that do fall there scan only what is newer
            heap.settle()

    def _going(self, op: int, chunk: int = 2048, start: int | None = None, halve: bool = False):
        """Run to `op`, first restoring the nearest checkpoint at or below op `start` (default `op`) when the
        session is past it or that checkpoint is ahead of the session; with `halve`, leave a checkpoint
        half-way to an op close to the aim (see timeline.HALVE_MIN)."""
        start = op if start is None else start
        t = self.timeline
        if op != self.ops_done:
            cp = t.nearest(start)
            if start < self.ops_done or (cp is not None and cp.op > self.ops_done):
                for m in self.machines.values():
                    m.mmu.recycle()
                state = cp.state()
                self.machines = state["machines"]
                for key, value in state["cursor"].items():
                    setattr(self, key, value)
                mid = (self.ops_done + op) // 2
                if halve and op - self.ops_done > HALVE_MIN and t.aim - NEAR < mid <= t.aim:
                    self.run(mid - self.ops_done)
                    if self.ops_done == mid and mid not in t.checkpoints:
                        self._checkpoint()
            while self.ops_done < op and self.run(min(chunk, op - self.ops_done)):
                yield self.ops_done
        t.move_anchor(self.ops_done)

    def _go(self, op: int) -> None:
        """Go to `op` on the way of a search: the aim (where near checkpoints go) stays."""
        for _ in self._going(op):
            pass

    def find(self, kind: EventKind, mode: str, forward: bool = True):
        """Search for the next (or previous) op with an event of `kind` in `mode`'s machine, from the op the
        session is at. A generator: it yields the op it has searched up to, now and then (a caller may stop
        it there: the session is then left wherever the search was, and should seek back), and returns the
        op found (the session at it, that op just run) or None (the session back where it started)."""
        start = self.ops_done
        if kind.name == "os":
            found = yield from self._find_on_tape(kind, forward)
        else:
            found = yield from (self._find_forward(kind, mode) if forward else self._find_back(kind, mode, start))
        self._go(start if found is None else found)
        return found

    def _find_on_tape(self, kind: EventKind, forward: bool, chunk: int = 1 << 16):
        """An OS op is an op of the stream, whatever the machines do: read the tape (run on past its end)."""
        if not forward:
            hi = self.ops_done - 1  # ops 1 .. hi are before the current one
            while hi > 0:
                lo = max(0, hi - chunk)
                hits = np.flatnonzero(kind.matching_ops(self.ops(lo, hi)["kind"]))
                if len(hits):
                    return lo + int(hits[-1]) + 1
                hi = lo
                yield hi
            return None
        pos = self.ops_done  # op pos + 1 is the next one
        while True:
            if pos >= self.frontier:
                if self.finished:
                    return None
                self._go(self.frontier)
                self.run(chunk)
            ops = self.ops(pos, pos + chunk)
            hits = np.flatnonzero(kind.matching_ops(ops["kind"]))
            if len(hits):
                return pos + int(hits[0]) + 1
            pos += len(ops)
            yield pos

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
                    self._go(len(candidates) * BUCKET)
                    yield self.ops_done
                    continue
                self._go((b + later[0]) * BUCKET)
            else:  # past the index: run a bucket in batch, then scan it if it held one
                start = self.ops_done
                self.run(BUCKET - start % BUCKET)
                candidates = self.event_buckets(kind, mode)
                partial = self.at_end and self.ops_done % BUCKET  # the stream's last bucket is never indexed
                if not partial and (b >= len(candidates) or not candidates[b]):
                    yield self.ops_done
                    continue
                self._go(start)
            found = self._scan(kind, mode, (self.ops_done // BUCKET + 1) * BUCKET, last=False)
            if found is not None:
                return found
            yield self.ops_done
        return None

    def _find_back(self, kind: EventKind, mode: str, start: int):
        if start == 0:
            return None
        hi = start - 1  # the ops still to look at: 1 .. hi
        # close below, op by op from each checkpoint a seek left there, down to NEAR_SPAN ops back
        while hi > max(0, start - NEAR_SPAN):
            cp = self.timeline.nearest(hi - 1)
            lo = cp.op if cp is not None else 0
            if hi - lo > NEAR:
                break
            candidates = self.event_buckets(kind, mode)
            first, last = lo // BUCKET, (hi - 1) // BUCKET
            if last >= len(candidates) or candidates[first : last + 1].any():
                self._go(lo)
                found = self._scan(kind, mode, hi, last=True)
                if found is not None:
                    return found
            hi = lo
            yield hi
        if hi == 0:
            return None
        bucket = hi // BUCKET
        self._go(bucket * BUCKET)
        found = self._scan(kind, mode, hi, last=True)
        while found is None:
            yield bucket * BUCKET
            earlier = np.flatnonzero(self.event_buckets(kind, mode)[:bucket])
            if not len(earlier):
                return None
            bucket = int(earlier[-1])
            self._go(bucket * BUCKET)
            found = self._scan(kind, mode, (bucket + 1) * BUCKET, last=True)
        return found
