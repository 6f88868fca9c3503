"""The machinery shared by the line-oriented trace parsers (lackey, plain text).

A format is a numba kernel that parses as many complete lines of a byte
buffer as fit in its output arrays; no Python runs per line. The driver here
feeds it blocks from ``bytestream``, carries the partial last line of a
block into the next, cuts the output into op chunks, and turns the kernel's
error codes into one-line ``TraceError`` messages naming the file and line.

Every kernel has the signature::

    kernel(buf, pos, final, line_no, ifetch, skip_bad, out_rw, out_addr, n_out)
      -> (pos, line_no, n_out, skipped, status, err, bad_start, bad_end)

and stops at the first of: the end of the complete lines (``status`` DONE;
with ``final`` a last line without a newline counts as complete), fewer than
MAX_OPS_PER_LINE free output slots (FULL), or a bad line when not skipping
(BAD: ``line_no`` is its number, [bad_start, bad_end) its bytes, ``err`` why).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from numba import njit

from . import ops
from .bytestream import ReadError, blocks
from .errors import TraceError

# kernel statuses
DONE, FULL, BAD = 0, 1, 2
# error codes
E_SYNTAX, E_WIDE64, E_WIDE57, E_NONCANONICAL, E_SIZE, E_RANGE = range(1, 7)
ERROR_TEXT = {
    E_SYNTAX: "malformed line",
    E_WIDE64: "address wider than 64 bits",
    E_WIDE57: "address wider than 57 bits",
    E_NONCANONICAL: "non-canonical address (bits 56-63 must all equal bit 56)",
    E_SIZE: "bad access size",
    E_RANGE: "access runs past the end of the canonical address range",
}
# A modify that crosses a page boundary: load, load, store, store.
MAX_OPS_PER_LINE = 4
# Longest line carried between blocks; anything longer is not a trace line (binary data?).
MAX_LINE = 1 << 16

_U = np.uint64


@njit(cache=True, nogil=True)
def is_space(c):
    return c == 32 or c == 9 or c == 13


# The value of each byte as a hex digit, -1 for a byte that is not one.
HEX_VALUE = np.full(256, -1, dtype=np.int8)
for _digits, _first in ((b"0123456789", 0), (b"abcdef", 10), (b"ABCDEF", 10)):
    HEX_VALUE[np.frombuffer(_digits, dtype=np.uint8)] = np.arange(_first, _first + len(_digits))


@njit(cache=True, nogil=True)
def parse_hex(buf, i, end):
    """(value, index after the digits, error); error is E_SYNTAX without digits, E_WIDE64 past 16 significant ones."""
    value = _U(0)
    start = i
    significant = 0
    while i < end:
        d = HEX_VALUE[buf[i]]
        if d < 0:
            break
        if significant or d:
            significant += 1
            if significant > 16:
                return value, i, E_WIDE64
        value = (value << _U(4)) | _U(d)
        i += 1
    if i == start:
        return value, i, E_SYNTAX
    return value, i, 0


@njit(cache=True, nogil=True)
def canonical_error(addr):
    """0 for a canonical 57-bit address (bits 56..63 all equal), else why not."""
    top = addr >> _U(57)
    if top != _U(0) and top != _U(0x7F):
        return E_WIDE57
    bits = addr >> _U(56)
    if bits != _U(0) and bits != _U(0xFF):
        return E_NONCANONICAL
    return 0


@njit(cache=True, nogil=True)
def line_end(buf, pos, end):
    """Index of the newline ending the line at ``pos``, or ``end`` if there is none yet."""
    while pos < end and buf[pos] != 10:
        pos += 1
    return pos


@dataclass
class ParseStats:
    """What the last pass over a trace saw; filled in as it goes."""

    lines_read: int = 0
    skipped_lines: int = 0
    ops: int = 0
    complete: bool = False


def snippet(raw: bytes) -> str:
    text = raw.rstrip(b"\r").decode("utf-8", "replace")
    return repr(text if len(text) <= 60 else text[:57] + "...")


def bad_line_error(path: str, line_no: int, err: int, raw: bytes, what: str) -> TraceError:
    reason = ERROR_TEXT[err] if err != E_SYNTAX else f"malformed {what} line"
    return TraceError(f"{path}:{line_no}: {reason}: {snippet(raw)}")


def parse_file(path: str, kernel: Callable, what: str, *, chunk_ops: int, ifetch: bool, skip_bad: bool,
               pid: int, stats: ParseStats) -> Iterator[np.ndarray]:
    """Op chunks of exactly ``chunk_ops`` (the last may be shorter) parsed by ``kernel`` from ``path``.

    ``what`` names the format in messages. A file without a single access is an error.
    """
    cap = chunk_ops + MAX_OPS_PER_LINE - 1  # a kernel stops once n_out >= chunk_ops
    out_rw = np.empty(cap, dtype=np.uint8)
    out_addr = np.empty(cap, dtype=np.uint64)
    n_out = 0
    line_no = 1
    carry = b""
    discarding = False  # skipping the rest of an over-long line
    stats.lines_read = stats.skipped_lines = stats.ops = 0
    stats.complete = False
    source = blocks(path)

    def emit(n: int) -> np.ndarray:
        chunk = ops.empty(n)
        chunk["rw"] = out_rw[:n]
        chunk["addr"] = out_addr[:n]
        chunk["pid"] = pid
        stats.ops += n
        return chunk

    while True:
        try:
            block = next(source, None)
        except ReadError as e:
            raise TraceError(f"{path}:{line_no}: {e}") from None
        final = block is None
        if discarding and block:
            nl = block.find(b"\n")
            if nl < 0:
                continue
            block = block[nl + 1 :]
            discarding = False
            line_no += 1
            stats.skipped_lines += 1
        buf = np.frombuffer(carry + block if block else carry, dtype=np.uint8)
        pos = 0
        while True:
            pos, line_no, n_out, skipped, status, err, bad_start, bad_end = kernel(
                buf, pos, final, line_no, ifetch, skip_bad, out_rw, out_addr, n_out)
            stats.skipped_lines += skipped
            stats.lines_read = line_no - 1
            if status == BAD:
                raise bad_line_error(path, line_no, err, buf[bad_start:bad_end].tobytes(), what)
            # the last line parsed may overshoot chunk_ops by up to MAX_OPS_PER_LINE - 1
            while n_out >= chunk_ops:
                yield emit(chunk_ops)
                n_out -= chunk_ops
                out_rw[:n_out] = out_rw[chunk_ops : chunk_ops + n_out]
                out_addr[:n_out] = out_addr[chunk_ops : chunk_ops + n_out]
            if status != FULL:
                break
        if final:
            break
        carry = buf[pos:].tobytes()
        if len(carry) > MAX_LINE:
            if not skip_bad:
                raise TraceError(f"{path}:{line_no}: line longer than {MAX_LINE} bytes (not a text trace?)")
            carry, discarding = b"", True
    if n_out:
        yield emit(n_out)
    if discarding:
        stats.skipped_lines += 1
        stats.lines_read = line_no
    stats.complete = True
    if stats.ops == 0:
        skipped = f" ({stats.skipped_lines} bad lines skipped)" if stats.skipped_lines else ""
        raise TraceError(f"{path}: no accesses{skipped}")
