"""The C heap's trimming, held off while a sweep's cell runs.

A Dask Nanny starts every worker with ``MALLOC_TRIM_THRESHOLD_=65536`` (its default
``distributed.nanny.pre-spawn-environ``), so that freed memory goes back to the system at once. A cell
allocates and frees buffers of tens to hundreds of KiB at the top of glibc's heap all the time: at that
threshold glibc gives the top back at nearly every free and faults it in again, zeroed, at the next
allocation. Measured on one kcompile cell (2M/2M pages): 178,000 minor page faults against 3,500 with glibc's
own default, and a quarter more CPU time (0.5 s of it in the kernel); any threshold from 1 MiB up gave the
default's figures. So while a cell runs, a process started with the variable keeps up to ``KEEP`` bytes of
free heap; after the cell, the configured threshold is put back and the heap trimmed once, as the worker's
owner asked. A process without the variable is left alone: glibc's own adaptive threshold serves it.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import platform

M_TRIM_THRESHOLD = -1  # mallopt's parameter number, from glibc's malloc.h
KEEP = 16 << 20  # bytes of free heap top kept while a cell runs; 1 MiB was already enough (see above)


@functools.cache
def _glibc():
    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(None)  # this process's own C library
    except OSError:
        return None


def configured_threshold() -> int | None:
    """The trim threshold this process was started with, when one was set (as a Dask Nanny does)."""
    try:
        return int(os.environ["MALLOC_TRIM_THRESHOLD_"])
    except (KeyError, ValueError):
        return None


@contextlib.contextmanager
def untrimmed():
    """Within the block, the heap is not trimmed below KEEP bytes; after it, trimmed at the configured threshold."""
    configured, libc = configured_threshold(), _glibc()
    if configured is None or configured >= KEEP or libc is None:
        yield
        return
    libc.mallopt(M_TRIM_THRESHOLD, KEEP)
    try:
        yield
    finally:
        libc.mallopt(M_TRIM_THRESHOLD, configured)
        libc.malloc_trim(0)
