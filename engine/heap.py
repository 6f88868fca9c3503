"""The process's garbage collection, kept off the keys' critical path.

CPython's full collection scans every tracked object: in the app that is some
2-3·10^5 (Textual's strips and their caches, numba's types, the machines'
state), 50-130 ms a time, and it falls on whichever key's work allocates at the
wrong moment. ``settle`` collects at a moment that can afford it (a jump, a
load) and freezes the survivors, so that the full collections after it scan
only what is newer (the recipe of CPython's ``gc.freeze`` documentation).
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
