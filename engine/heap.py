"""The process's garbage collection, kept off the keys' critical path.

CPython's full collection scans every tracked object: in the app that is some
2-3·10^5 (Textual's strips and their caches, numba's types, the machines'
state), 50-130 ms a time, and it falls on whichever key's work allocates at the
wrong moment. ``settle`` collects at a moment that can afford it (a jump, a
load) and freezes the survivors, so that the full collections after it scan
only what is newer (the recipe of CPython's ``gc.freeze`` documentation).
``defer_full`` puts full collections off while they would fall on keys most
(the engine running its kernels interpreted, for the seconds a fresh install
compiles).
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect everything, then freeze what survives. Unfrozen first, so that what an earlier ``settle``
    froze and has died since (a cycle that refcounting cannot free) is collected now: what stays uncollected
    is bounded by one heap's worth, until the next ``settle``."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


# generation 2 is collected after this many collections of generation 1 (CPython's default is 10): in effect never
DEFERRED = 1 << 30
_threshold: tuple[int, int, int] | None = None  # the thresholds defer_full replaced


def defer_full(defer: bool) -> None:
    """Put automatic full collections off (young ones go on), or bring them back as they were.

    For while the engine runs its kernels' source interpreted: it and the UI then share the GIL, and a
    full collection (15-80 ms measured while compiling: ``python -m rvi_tui.tui.bench --cold``) falls on
    whichever key or redraw allocates next. That phase ends when the compiled kernels arrive, so the
    cyclic garbage it leaves uncollected is bounded; the first full collection after it takes that too.
    """
    global _threshold
    if defer and _threshold is None:
        _threshold = gc.get_threshold()
        gc.set_threshold(_threshold[0], _threshold[1], DEFERRED)
    elif not defer and _threshold is not None:
        now = gc.get_threshold()
        gc.set_threshold(now[0], now[1], _threshold[2])
        _threshold = None
