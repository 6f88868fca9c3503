"""The project's own op files: ``.npy`` arrays of OP_DTYPE, replayed exactly.

Read as a stream of blocks, like the text traces (a file larger than RAM, a
pipe or a gzip-compressed file replays chunk by chunk), and never with
pickle. Written by streaming chunks behind a fixed-size header that is
rewritten with the final length, into a temporary file renamed over the
target only when complete, so a reader never sees a half-written file.
"""

from __future__ import annotations

import io
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


def read_header(head: bytes, name: str) -> tuple[int, int]:
    """(header bytes, op count) of the op file whose content starts with ``head``; TraceError if it is not one.

    Read with numpy's header parser, never with pickle: an array of objects is refused for its dtype.
    """
    f = io.BytesIO(head)
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f".npy format version {version[0]}.{version[1]} (1.0 and 2.0 are read)")
    except (ValueError, EOFError, SyntaxError, struct.error) as e:
        why = "it does not start as a .npy file does" if not head.startswith(NPY_MAGIC) else \
            (str(e).splitlines()[0] if str(e) else type(e).__name__)
        raise TraceError(f"{name}: not a .npy op file ({why})") from None
    if dtype != ops.OP_DTYPE or len(shape) != 1 or fortran:
        raise TraceError(f"{name}: not an op file: a {len(shape)}-d array of {dtype}, not a 1-d array of OP_DTYPE")
    return f.tell(), int(shape[0])


def _bad_ops(chunk: np.ndarray) -> np.ndarray:
    """A mask of ops no workload could have produced (unknown kind, rw or flags)."""
    kind = chunk["kind"]
    bad = kind >= len(ops.KIND_NAMES)
    bad |= (kind == ops.ACCESS) & (chunk["rw"] > ops.FETCH)
    bad |= chunk["flags"] > (ops.MAP_WRITE | ops.MAP_HUGE)
    return bad


def _bad_addresses(chunk: np.ndarray, va_bits: int) -> np.ndarray:
    """A mask of ops whose address is not a user address of ``va_bits``-bit paging."""
    user = (chunk["addr"] >> np.uint64(va_bits - 1)) == 0
    return np.isin(chunk["kind"], (ops.ACCESS, ops.MMAP, ops.MUNMAP)) & ~user


def npy_chunks(blocks: Iterator[bytes], name: str, header: int, n: int, chunk_ops: int, *, skip_bad: bool,
               va_bits: int, stats) -> Iterator[np.ndarray]:
    """Validated op arrays of at most ``chunk_ops`` from an op file's content in byte blocks (its header of
    ``header`` bytes first, then ``n`` ops); a bad op raises TraceError naming its index unless skipped."""
    stats.lines_read = stats.skipped_lines = stats.ops = 0
    stats.complete = False
    if n == 0:
        raise TraceError(f"{name}: no ops")
    size = ops.OP_DTYPE.itemsize
    carry = b""
    index = 0
    for block in blocks:
        if header:
            cut = min(header, len(block))
            block, header = block[cut:], header - cut
        data = carry + block
        whole = min(len(data) // size, n - index)
        arr = np.frombuffer(data, dtype=ops.OP_DTYPE, count=whole)
        carry = data[whole * size :]
        for start in range(0, whole, chunk_ops):
            yield from _checked(arr[start : start + chunk_ops].copy(), index + start, name, skip_bad, va_bits,
                                stats)
        index += whole
        if index == n:
            break
    if index < n:
        raise TraceError(f"{name}: op file cut short: {index:,} of its {n:,} ops are there")
    stats.complete = True
    if stats.ops == 0:
        raise TraceError(f"{name}: no valid ops ({stats.skipped_lines} bad ops skipped)")


def _checked(chunk: np.ndarray, start: int, name: str, skip_bad: bool, va_bits: int,
             stats) -> Iterator[np.ndarray]:
    invalid = _bad_ops(chunk)
    bad = invalid | _bad_addresses(chunk, va_bits)
    if bad.any():
        if not skip_bad:
            i = int(np.flatnonzero(bad)[0])
            row = chunk[i]
            addr = int(row["addr"])
            if invalid[i]:
                raise TraceError(f"{name}: op {start + i}: not a valid op (kind {row['kind']}, rw {row['rw']}, "
                                 f"flags {row['flags']}, addr {addr:#x})")
            from .textparse import address_error, error_text  # numba: only for the message

            why = error_text(int(address_error(np.uint64(addr), va_bits)), va_bits)
            raise TraceError(f"{name}: op {start + i}: {why}: {ops.describe(row)}")
        stats.skipped_lines += int(bad.sum())
        chunk = chunk[~bad]
    stats.lines_read = start + len(bad)
    stats.ops += len(chunk)
    if len(chunk):
        yield chunk
