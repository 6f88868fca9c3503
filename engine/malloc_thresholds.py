"""glibc's heap thresholds while a sweep's cell runs in a process started as a Dask worker.

A Dask Nanny starts every worker with ``MALLOC_TRIM_THRESHOLD_=65536`` (its default
``distributed.nanny.pre-spawn-environ``), so that freed memory goes back to the system at once. Setting it
also turns off glibc's adaptive thresholds (mallopt(3)), which otherwise rise to the sizes a program
frees. A cell allocates and frees buffers of tens of KiB to MiBs all the time: glibc then gives the top of
the heap back at nearly every free, and maps every buffer over 128 KiB afresh, so that each is faulted in
again, zeroed. Measured (a kcompile cell, 2M/2M pages): 178,000 minor page faults against 3,500 without the
variable, and a quarter more CPU time; a tlbstress cell (4K/4K) 43,000 against 9,000 once trimming was held
off, down to 10,600 with the mapping threshold raised too. So while a cell runs in such a process, both
thresholds are at the highest values glibc's adaptive ones reach on 64-bit; after it, the configured values
are put back and the heap trimmed once, as the worker's owner asked. A process without these variables is
left alone: the adaptive thresholds serve it.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import platform

# mallopt's parameter numbers (glibc's malloc.h), the values held while a cell runs, glibc's defaults
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
HELD = {M_TRIM_THRESHOLD: 64 << 20, M_MMAP_THRESHOLD: 32 << 20}  # 2 x and 1 x DEFAULT_MMAP_THRESHOLD_MAX
DEFAULT = 128 << 10  # both thresholds' defaults
VARIABLES = {M_TRIM_THRESHOLD: "MALLOC_TRIM_THRESHOLD_", M_MMAP_THRESHOLD: "MALLOC_MMAP_THRESHOLD_"}


@functools.cache
def _glibc():
    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(None)  # this process's own C library
    except OSError:
        return None


def configured() -> dict[int, int] | None:
    """The thresholds this process was started with, when one was set (as a Dask Nanny does); else None."""
    if not any(name in os.environ for name in VARIABLES.values()):
        return None
    out = {}
    for param, name in VARIABLES.items():
        try:
            out[param] = int(os.environ.get(name, DEFAULT))
        except ValueError:  # glibc ignores a value it cannot read
            out[param] = DEFAULT
    return out


@contextlib.contextmanager
def untrimmed():
    """Within the block, glibc's thresholds as high as its adaptive ones go; after it, as configured, trimmed."""
    given, libc = configured(), _glibc()
    if given is None or libc is None:
        yield
        return
    for param, value in HELD.items():
        libc.mallopt(param, max(value, given[param]))
    try:
        yield
    finally:
        for param, value in given.items():
            libc.mallopt(param, value)
        libc.malloc_trim(0)
