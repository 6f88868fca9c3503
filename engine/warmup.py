"""Load the compiled kernels (or compile them on a cold cache) before anyone waits on them.

numba caches the machine code next to the package (``cache=True``); the first
process after an install compiles for about a minute, later ones load in well
under a second. Callers run this in the background (the TUI) or with a notice
(the CLI), never on a path where a user stares at a frozen screen.
"""

from __future__ import annotations

from ..workloads import ops as O
from . import config as C
from .machine import Machine


def warm_up() -> None:
    """Run one access through each mode's hardware path so every kernel specialisation is loaded."""
    config = C.load()
    for mode in ("native", "shadow", "nested"):
        Machine(mode, config).run(O.concat([O.mmap(1, 0x10000, 0x1000), O.accesses([0x10000], rw=O.WRITE)]))
