"""What the views of recently shown ops are made of, kept by op so that going back one op redraws from them.

The view of op k (after going back or a jump) needs each of the last ops' events, each mode's last walk grid
and the counters at the sparklines' sample points: all fixed by the run and the op, so once worked out (by
stepping the session again) they hold until another run is loaded. A ``ViewCache`` keeps them: the stepped
ops of one contiguous stretch of the run, and the counters at single ops. Going back one op then asks the
session only for its state at that op; a stretch or a sample point not held is stepped or run again, with some
more ops below it (``Runner._view_task``) so that the next ops gone back find theirs held.
"""

from __future__ import annotations

from dataclasses import dataclass, field

UNKNOWN = object()  # walk_at_lo: not worked out yet (None: there is no walk at or before the stretch)


@dataclass
class StepRecord:
    """One op stepped again: what the event log and the walk grid need of it."""

    op_index: int  # 1-based: the session's ops_done after it
    op_text: str
    events: dict  # mode -> events
    views: dict  # mode -> walk grid, for the modes that completed a walk in it


@dataclass
class ViewCache:
    max_steps: int = 2048  # stepped ops held
    max_counters: int = 2048  # sample points held
    lo: int = 0  # steps holds ops lo+1 .. hi
    steps: list[StepRecord] = field(default_factory=list)
    walk_at_lo: dict = field(default_factory=dict)  # mode -> the last walk grid at or before op lo (or None)
    counters: dict[int, dict] = field(default_factory=dict)  # op -> Session.counters() after it

    @property
    def hi(self) -> int:
        return self.lo + len(self.steps)

    def to_step(self, rec_from: int, k: int, extra: int) -> tuple[int, int] | None:
        """The ops (a, b] to step so that ops rec_from+1 .. k are held: None if they are; below the stretch
        `extra` more ops than needed (going back reaches them next)."""
        if self.lo <= rec_from and k <= self.hi:
            return None
        if self.lo < k <= self.hi:
            return max(0, rec_from - extra), self.lo
        if self.lo <= rec_from <= self.hi:
            return self.hi, k
        return max(0, rec_from - extra), k

    def add_steps(self, a: int, records: list[StepRecord]) -> None:
        """Hold the records of ops a+1 .. a+len(records), joined to the stretch if they touch it."""
        b = a + len(records)
        if b == self.lo:  # below: the last walks known at the old lo hold at a if none is in between
            walk_at = {}
            for mode, view in self.walk_at_lo.items():
                if view is UNKNOWN or (view is not None and view.op_index > a):
                    continue
                walk_at[mode] = view
            self.steps[:0] = records
            self.steps = self.steps[: self.max_steps]
            self.lo, self.walk_at_lo = a, walk_at
        elif a == self.hi:
            self.steps += records
            if len(self.steps) > self.max_steps:
                self.forget_below(self.hi - self.max_steps)
        else:
            self.lo, self.steps, self.walk_at_lo = a, records[-self.max_steps:], {}
            self.lo = b - len(self.steps)

    def forget_below(self, op: int) -> None:
        """Drop the records of ops at or below op, noting each mode's last walk grid among them."""
        n = op - self.lo
        if n <= 0:
            return
        for mode in {m for r in self.steps for m in r.views} | set(self.walk_at_lo):
            last = self.last_walk(mode, op)
            self.walk_at_lo[mode] = last
        self.steps = self.steps[n:]
        self.lo = op

    def last_walk(self, mode: str, k: int):
        """Mode's last walk grid at or before op k (lo < k <= hi): from the stretch, else walk_at_lo (may be
        UNKNOWN)."""
        for r in reversed(self.steps[: k - self.lo]):
            view = r.views.get(mode)
            if view is not None:
                return view
        return self.walk_at_lo.get(mode, UNKNOWN)

    def keep_counters(self, wanted) -> None:
        if len(self.counters) > self.max_counters:
            self.counters = {op: c for op, c in self.counters.items() if op in wanted}
