"""The process's garbage collection, kept off the keys' critical path.

CPython's full collection scans every tracked object: in the app that is some
2-3·10^5 (Textual's strips and their caches, numba's types, the machines'
state), 50-130 ms a time, and it falls on whichever key's work allocates at the
wrong moment. ``settle`` collects at a moment that can afford it (a jump, a
load) and freezes the survivors, so that the full collections after it scan
only what is newer (the recipe of CPython's ``gc.freeze`` documentation).
``defer_full`` puts automatic full collections off while the engine runs:
they are triggered by allocation, and a key's redraw is the burst of
allocation most likely to trigger one. ``collect_full_if_due`` then collects at
a moment the engine's thread picks, between its slices, when no key or redraw
is waiting: a key can still meet one, but only by arriving during it.
"""

from __future__ import annotations

import gc
import time


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

    For while the engine runs: a full collection (15-80 ms measured while compiling, 55-71 ms running
    compiled: ``python -m rvi_tui.tui.bench``) falls on whichever key or redraw allocates next; on the
    keys of a compiled run, one in ten. While the kernels run interpreted (until the compiled ones arrive:
    a bounded phase) none is made; running compiled, ``collect_full_if_due`` makes them.
    """
    global _threshold
    if defer and _threshold is None:
        _threshold = gc.get_threshold()
        gc.set_threshold(_threshold[0], _threshold[1], DEFERRED)
    elif not defer and _threshold is not None:
        now = gc.get_threshold()
        gc.set_threshold(now[0], now[1], _threshold[2])
        _threshold = None


FULL_EVERY_S = 2.0  # running compiled: about as often as the automatic ones came (a full one per ~2 s measured)
_last_full = 0.0


def collect_full_if_due() -> None:
    """A full collection if FULL_EVERY_S have passed since the last one made here (the caller picks the moment:
    no key or redraw waiting). Without it, the cyclic garbage that outlives the young collections (Textual's
    strips, which cache themselves) would pile up while full collections are deferred."""
    global _last_full
    now = time.monotonic()
    if now - _last_full >= FULL_EVERY_S:
        gc.collect()
        _last_full = time.monotonic()
