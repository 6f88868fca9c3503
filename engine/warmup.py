"""Run every kernel specialisation once, so that it is compiled (or loaded) before anyone waits on it.

The compiler child (``compile_kernels.py``) calls this for the build it is
compiling; anyone else gets whatever ``hardware.py`` serves at the moment.
"""

from __future__ import annotations

from ..workloads import ops as O
from . import config as C
from .session import ALL_MODES, Session


def warm_up(modes: tuple[str, ...] = ALL_MODES, step: bool = True, batch: bool = True) -> None:
    """The step path (with events) and the batch path of every machine in `modes`."""
    chunk = O.concat([O.mmap(1, 0x10000, 0x4000), O.accesses([0x10000, 0x11000, 0x12000], rw=O.WRITE),
                      O.accesses([0x10008, 0x13000])])
    session = Session([chunk], C.load(), modes)
    if step:
        for _ in range(3):
            session.step()
    if batch:
        session.run(16)
