"""The project's own op files: ``.npy`` arrays of OP_DTYPE, replayed exactly.

Read memory-mapped (a file larger than RAM replays chunk by chunk) and never
with pickle. Written by streaming chunks behind a fixed-size header that is
rewritten with the final length, into a temporary file renamed over the
target only when complete, so a reader never sees a half-written file.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

import numpy as np

from . import ops
from .atomic import atomic_output
from .errors import TraceError

NPY_MAGIC = b"\x93NUMPY"
_HEADER_LEN = 256  # whole header, a multiple of 64 with room for any uint64 length


def _header(n: int) -> bytes:
    text = "{'descr': %r, 'fortran_order': False, 'shape': (%d,), }" % (
        np.lib.format.dtype_to_descr(ops.OP_DTYPE), n)
    prefix_len = len(NPY_MAGIC) + 2 + 2  # magic, version 1.0, uint16 header length
    body = text.ljust(_HEADER_LEN - prefix_len - 1) + "\n"
    return NPY_MAGIC + b"\x01\x00" + struct.pack("<H", len(body)) + body.encode("latin1")


def save_ops(path, ops_iter) -> int:
    """Write ops (an array, a Workload, or an iterable of arrays) to ``path`` atomically; the count written."""
    if isinstance(ops_iter, np.ndarray):
        chunks: Iterable[np.ndarray] = [ops_iter]
    elif hasattr(ops_iter, "chunks"):
        chunks = ops_iter.chunks()
    else:
        chunks = ops_iter
    n = 0
    with atomic_output(path) as f:
        f.write(_header(0))
        for chunk in chunks:
            if chunk.dtype != ops.OP_DTYPE:
                raise TypeError(f"save_ops: a chunk has dtype {chunk.dtype}, not OP_DTYPE")
            f.write(np.ascontiguousarray(chunk).tobytes())
            n += len(chunk)
        f.seek(0)
        f.write(_header(n))
    return n


def load_ops(path: str) -> np.ndarray:
    """The op array of ``path``, memory-mapped read-only; TraceError if it is not an op file."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError, TypeError, SyntaxError, struct.error) as e:
        raise TraceError(f"{path}: not a readable .npy op file ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype != ops.OP_DTYPE or arr.ndim != 1:
        raise TraceError(f"{path}: not an op file: a {getattr(arr, 'ndim', '?')}-d array of "
                         f"{getattr(arr, 'dtype', '?')}, not a 1-d array of OP_DTYPE")
    return arr


def _bad_ops(chunk: np.ndarray) -> np.ndarray:
    """A mask of ops no workload could have produced (unknown kind, rw or flags, non-canonical address)."""
    kind = chunk["kind"]
    addr = chunk["addr"]
    top = addr >> np.uint64(56)
    bad = kind >= len(ops.KIND_NAMES)
    bad |= (kind == ops.ACCESS) & (chunk["rw"] > ops.FETCH)
    bad |= chunk["flags"] > (ops.MAP_WRITE | ops.MAP_HUGE)
    bad |= np.isin(kind, (ops.ACCESS, ops.MMAP, ops.MUNMAP)) & (top != 0) & (top != 0xFF)
    return bad


def npy_chunks(path: str, chunk_ops: int, *, skip_bad: bool, stats) -> Iterator[np.ndarray]:
    """Validated op chunks from an op file; a bad op raises TraceError naming its index unless skipped."""
    arr = load_ops(path)
    stats.lines_read = stats.skipped_lines = stats.ops = 0
    stats.complete = False
    if len(arr) == 0:
        raise TraceError(f"{path}: no ops")
    for start in range(0, len(arr), chunk_ops):
        chunk = np.array(arr[start : start + chunk_ops])
        bad = _bad_ops(chunk)
        if bad.any():
            if not skip_bad:
                i = int(np.flatnonzero(bad)[0])
                row = chunk[i]
                raise TraceError(f"{path}: op {start + i}: not a valid op (kind {row['kind']}, rw {row['rw']}, "
                                 f"flags {row['flags']}, addr {int(row['addr']):#x})")
            stats.skipped_lines += int(bad.sum())
            chunk = chunk[~bad]
        stats.lines_read = start + len(bad)
        stats.ops += len(chunk)
        if len(chunk):
            yield chunk
    stats.complete = True
    if stats.ops == 0:
        raise TraceError(f"{path}: no valid ops ({stats.skipped_lines} bad ops skipped)")
