"""Counter arithmetic for the counters pane: current rates over a wall-clock window."""

from __future__ import annotations

import time
from collections import deque

from rvi_tui.engine.report import summarize


def delta(cur: dict, old: dict) -> dict:
    """Per-mode counter differences cur - old."""
    return {mode: {k: v - old.get(mode, {}).get(k, 0) for k, v in c.items()} for mode, c in cur.items()}


class CounterHistory:
    """Counter samples over wall time, for the 'now' rates (only while running)."""

    def __init__(self, window_s: float = 1.0, clock=time.monotonic):
        self.window_s = window_s
        self.clock = clock
        self.samples: deque = deque()

    def reset(self) -> None:
        self.samples.clear()

    def add(self, counters: dict, running: bool) -> None:
        """Record a pull. Rates only use samples taken while running."""
        now = self.clock()
        if running:
            self.samples.append((now, counters))
            while len(self.samples) > 2 and now - self.samples[0][0] > self.window_s:
                self.samples.popleft()
        else:
            self.samples.clear()

    def window(self) -> tuple[dict, float] | None:
        """(summaries of the counters' change over the window, its length in seconds), or None."""
        if len(self.samples) < 2:
            return None
        (t0, c0), (t1, c1) = self.samples[0], self.samples[-1]
        dt = t1 - t0
        if dt <= 0.05:
            return None
        return summarize(delta(c1, c0)), dt
