"""Load the compiled kernels (or compile them on a cold cache) before anyone waits on them.

numba caches the machine code next to the package (``cache=True``); the first
process after an install compiles for about a minute, later ones load in well
under a second. Callers run this in the background (the TUI) or with a notice
(the CLI), never on a path where a user stares at a frozen screen.
"""

from __future__ import annotations

from ..workloads import ops as O
from . import config as C
from .session import Session


def warm_up() -> None:
    """Load (or, on a cold cache, compile) every kernel specialisation: step and batch, all modes."""
    chunk = O.concat([O.mmap(1, 0x10000, 0x4000), O.accesses([0x10000, 0x11000, 0x12000], rw=O.WRITE),
                      O.accesses([0x10008, 0x13000])])
    session = Session([chunk], C.load())
    for _ in range(3):
        session.step()
    session.run(16)
