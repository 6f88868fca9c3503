"""How fast the lackey parser runs, for ``rvi-tui bench``.

``write_lackey_sample`` makes a large trace to time it on in about a second
(vectorised, fixed-width lines), so the benchmark needs neither valgrind nor
a shipped multi-hundred-MB file.
"""

from __future__ import annotations

import os
import time

import numpy as np

from .atomic import atomic_output
from .lackey import parse_lackey
from .traces import TraceWorkload

_HEX_CHARS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_KIND_COLUMNS = np.array([[ord("I"), ord(" ")], [ord(" "), ord("L")], [ord(" "), ord("S")], [ord(" "), ord("M")]],
                         dtype=np.uint8)


def write_lackey_sample(path, lines: int = 10_000_000, *, seed: int = 1) -> int:
    """Write a synthetic lackey trace of ``lines`` records (a typical fetch/load/store/modify mix); returns ``lines``."""
    rng = np.random.default_rng(seed)
    shifts = np.arange(28, -1, -4, dtype=np.uint64)
    with atomic_output(path) as f:
        for start in range(0, lines, 1 << 20):
            n = min(1 << 20, lines - start)
            kind = rng.choice(4, size=n, p=[0.55, 0.25, 0.12, 0.08])
            code = 0x0040_0000 + rng.integers(0, 1 << 20, size=n, dtype=np.uint64)
            data = 0x0400_0000 + rng.integers(0, 1 << 24, size=n, dtype=np.uint64)
            addr = np.where(kind == 0, code, data)
            rows = np.empty((n, 14), dtype=np.uint8)  # "I  0040a1b2,4\n" / " L 04123450,8\n"
            rows[:, 0:2] = _KIND_COLUMNS[kind]
            rows[:, 2] = ord(" ")
            rows[:, 3:11] = _HEX_CHARS[(addr[:, None] >> shifts) & np.uint64(0xF)]
            rows[:, 11] = ord(",")
            rows[:, 12] = ord("0") + rng.choice(np.array([1, 2, 4, 8], dtype=np.uint8), size=n)
            rows[:, 13] = ord("\n")
            f.write(rows.tobytes())
    return lines


def _warm_up() -> None:
    """Compile (or load from numba's cache) the kernel so the timing measures parsing only."""
    buf = np.frombuffer(b" L 1000,8\n", dtype=np.uint8)
    parse_lackey(buf, 0, True, 1, True, False, 48, np.empty(8, np.uint8), np.empty(8, np.uint64), 0)


def lackey_parse_rate(path) -> tuple[int, float]:
    """(lines, seconds) to parse the lackey trace at ``path`` into ops, fetches included."""
    _warm_up()
    trace = TraceWorkload(os.fspath(path), "lackey", ifetch=True)
    start = time.perf_counter()
    for _ in trace.chunks():
        pass
    return trace.lines_read, time.perf_counter() - start
