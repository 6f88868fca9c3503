"""The op stream: the one interface between workloads and the engine.

An op is one row of a fixed numpy structured dtype, so a stream can be made
in vectorised chunks, saved as ``.npy`` (no pickle) and replayed exactly.

Fields
------
kind   ACCESS or a guest-OS event (see the constants below)
rw     for ACCESS: READ, WRITE or FETCH
flags  for MMAP: MAP_WRITE (writable), MAP_HUGE (may use guest large pages)
pid    the process the op belongs to (ACCESS, MMAP, MUNMAP, EXEC, EXIT), the
       parent for FORK, the process switched to for SWITCH
addr   ACCESS: virtual address; MMAP/MUNMAP: start of the range
arg    MMAP/MUNMAP: length in bytes; FORK: the child's pid
"""

from __future__ import annotations

import numpy as np

OP_DTYPE = np.dtype(
    [
        ("kind", np.uint8),
        ("rw", np.uint8),
        ("flags", np.uint16),
        ("pid", np.uint32),
        ("addr", np.uint64),
        ("arg", np.uint64),
    ]
)

# kinds
ACCESS = 0
MMAP = 1
MUNMAP = 2
FORK = 3
EXEC = 4
EXIT = 5
SWITCH = 6
KIND_NAMES = ("access", "mmap", "munmap", "fork", "exec", "exit", "switch")

# rw (ACCESS)
READ = 0
WRITE = 1
FETCH = 2
RW_NAMES = ("R", "W", "X")

# flags (MMAP)
MAP_WRITE = 1
MAP_HUGE = 2


def empty(n: int) -> np.ndarray:
    """A zeroed op array of length n."""
    return np.zeros(n, dtype=OP_DTYPE)


def accesses(addrs, rw=READ, pid: int = 1) -> np.ndarray:
    """ACCESS ops for an array of virtual addresses (rw scalar or array)."""
    addrs = np.asarray(addrs, dtype=np.uint64)
    ops = empty(addrs.shape[0])
    ops["kind"] = ACCESS
    ops["rw"] = rw
    ops["pid"] = pid
    ops["addr"] = addrs
    return ops


def op(kind: int, pid: int = 1, addr: int = 0, arg: int = 0, rw: int = 0, flags: int = 0) -> np.ndarray:
    """A single op as a length-1 array (for OS events and tests)."""
    ops = empty(1)
    ops["kind"] = kind
    ops["rw"] = rw
    ops["flags"] = flags
    ops["pid"] = pid
    ops["addr"] = addr
    ops["arg"] = arg
    return ops


def mmap(pid: int, start: int, length: int, writable: bool = True, huge: bool = True) -> np.ndarray:
    flags = (MAP_WRITE if writable else 0) | (MAP_HUGE if huge else 0)
    return op(MMAP, pid=pid, addr=start, arg=length, flags=flags)


def concat(parts) -> np.ndarray:
    parts = [p for p in parts if len(p)]
    return np.concatenate(parts) if parts else empty(0)


def describe(row) -> str:
    """One line for an op, for the event log and error messages."""
    kind = int(row["kind"])
    pid = int(row["pid"])
    if kind == ACCESS:
        return f"{RW_NAMES[int(row['rw'])]} {int(row['addr']):#x} (pid {pid})"
    if kind in (MMAP, MUNMAP):
        return f"{KIND_NAMES[kind]} {int(row['addr']):#x}+{int(row['arg']):#x} (pid {pid})"
    if kind == FORK:
        return f"fork pid {pid} -> {int(row['arg'])}"
    return f"{KIND_NAMES[kind]} pid {pid}"


def munmap(pid: int, start: int, length: int) -> np.ndarray:
    return op(MUNMAP, pid=pid, addr=start, arg=length)


def fork(parent: int, child: int) -> np.ndarray:
    """FORK: ``child`` gets a copy-on-write copy of ``parent``; the parent stays current."""
    return op(FORK, pid=parent, arg=child)


def switch(pid: int) -> np.ndarray:
    """SWITCH: a context switch to ``pid`` (a CR3 load)."""
    return op(SWITCH, pid=pid)


def exec_(pid: int) -> np.ndarray:
    """EXEC: ``pid`` gets an empty address space."""
    return op(EXEC, pid=pid)


def exit_(pid: int) -> np.ndarray:
    """EXIT: ``pid`` is destroyed; the stream must SWITCH before the next ACCESS."""
    return op(EXIT, pid=pid)
