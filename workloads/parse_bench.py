"""How fast the lackey parser runs, for ``rvi-tui bench``."""

from __future__ import annotations

import os
import time

import numpy as np

from .lackey import parse_lackey
from .traces import TraceWorkload


def _warm_up() -> None:
    """Compile (or load from numba's cache) the kernel so the timing measures parsing only."""
    buf = np.frombuffer(b" L 1000,8\n", dtype=np.uint8)
    parse_lackey(buf, 0, True, 1, True, False, np.empty(8, np.uint8), np.empty(8, np.uint64), 0)


def lackey_parse_rate(path) -> tuple[int, float]:
    """(lines, seconds) to parse the lackey trace at ``path`` into ops, fetches included."""
    _warm_up()
    trace = TraceWorkload(os.fspath(path), "lackey", ifetch=True)
    start = time.perf_counter()
    for _ in trace.chunks():
        pass
    return trace.lines_read, time.perf_counter() - start
