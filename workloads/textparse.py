"""The machinery shared by the line-oriented trace parsers (lackey, plain text).

A format is a numba kernel that parses as many complete lines of a byte
buffer as fit in its output arrays; no Python runs per line. The driver here
feeds it blocks from ``bytestream``, carries the partial last line of a
block into the next, cuts the output into op chunks, and turns the kernel's
error codes into one-line ``TraceError`` messages naming the file and line.

Every kernel has the signature::

    kernel(buf, pos, final, line_no, ifetch, skip_bad, va_bits, out_rw, out_addr, n_out)
      -> (pos, line_no, n_out, skipped, fetches, status, err, bad_start, bad_end)

and stops at the first of: the end of the complete lines (``status`` DONE;
with ``final`` a last line without a newline counts as complete), fewer than
MAX_OPS_PER_LINE free output slots (FULL), or a bad line when not skipping
(BAD: ``line_no`` is its number, [bad_start, bad_end) its bytes, ``err`` why).
``fetches`` counts instruction fetches left out (without ``ifetch``).

Every address is checked once, here, with its line: it must be a user
address of the guest's paging depth (``va_bits`` 48 for 4 levels, 57 for 5).
The model's guest runs user processes only, so an upper-half (kernel)
address is refused with that reason, and a non-canonical one as such; the
engine never sees an address it would alias.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from numba import njit

from . import ops
from .bytestream import ByteStream, ReadError
from .errors import TraceError

# kernel statuses
DONE, FULL, BAD = 0, 1, 2
# error codes
E_SYNTAX, E_WIDE64, E_NONCANONICAL, E_SIZE, E_RANGE, E_KERNEL, E_NEEDS_LA57 = range(1, 8)
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
def address_error(addr, va_bits):
    """0 for a user address of ``va_bits``-bit paging (below 2**(va_bits-1)), else why it is not one."""
    top = addr >> _U(va_bits - 1)
    if top == _U(0):
        return 0
    if top == _U(0xFFFF_FFFF_FFFF_FFFF) >> _U(va_bits - 1):
        return E_KERNEL
    if va_bits == 48 and addr >> _U(56) == _U(0):
        return E_NEEDS_LA57
    return E_NONCANONICAL


def error_text(err: int, va_bits: int, what: str = "") -> str:
    """Why a line (or an op) was refused, in words."""
    levels = 4 if va_bits == 48 else 5
    if err == E_SYNTAX:
        return f"malformed {what} line" if what else "malformed line"
    if err == E_WIDE64:
        return "address wider than 64 bits"
    if err == E_KERNEL:
        return (f"upper-half (kernel) address: the model's guest runs user processes only, whose addresses lie "
                f"below {1 << (va_bits - 1):#x} with {levels}-level paging; kernel mappings are not modelled")
    if err == E_NEEDS_LA57:
        return "address above the 47-bit user range of 4-level paging (--levels 5 gives 56 bits)"
    if err == E_NONCANONICAL:
        return f"non-canonical address for {levels}-level paging (bits {va_bits - 1}-63 must all equal bit {va_bits - 1})"
    if err == E_SIZE:
        return "bad access size"
    return "access runs past the end of the user address range"


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
    fetches: int = 0  # instruction fetches left out (replayed only with ifetch)
    ops: int = 0
    complete: bool = False


def snippet(raw: bytes) -> str:
    """A bad line as it can be shown on one line: quoted text, cut with "...", or what binary data is."""
    raw = raw.rstrip(b"\r")
    text = raw.decode("utf-8", "replace")
    if "\ufffd" in text or any(ord(c) < 32 and c != "\t" for c in text):
        return f"{len(raw):,} bytes of binary data, not text"
    return repr(text if len(text) <= 60 else text[:57] + "...")


def bad_line_error(path: str, line_no: int, err: int, raw: bytes, what: str, va_bits: int) -> TraceError:
    return TraceError(f"{path}:{line_no}: {error_text(err, va_bits, what)}: {snippet(raw)}")


def parse_file(source: ByteStream, kernel: Callable, what: str, *, chunk_ops: int, ifetch: bool, skip_bad: bool,
               va_bits: int, pid: int, stats: ParseStats) -> Iterator[np.ndarray]:
    """Op chunks of exactly ``chunk_ops`` (the last may be shorter) parsed by ``kernel`` from ``source``.

    ``what`` names the format in messages. A trace without a single access is an error.
    """
    path = source.name
    cap = chunk_ops + MAX_OPS_PER_LINE - 1  # a kernel stops once n_out >= chunk_ops
    out_rw = np.empty(cap, dtype=np.uint8)
    out_addr = np.empty(cap, dtype=np.uint64)
    n_out = 0
    line_no = 1
    carry = b""
    discarding = False  # skipping the rest of an over-long line
    stats.lines_read = stats.skipped_lines = stats.fetches = stats.ops = 0
    stats.complete = False
    blocks = source.blocks()

    def emit(n: int) -> np.ndarray:
        chunk = ops.empty(n)
        chunk["rw"] = out_rw[:n]
        chunk["addr"] = out_addr[:n]
        chunk["pid"] = pid
        stats.ops += n
        return chunk

    while True:
        try:
            block = next(blocks, None)
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
            pos, line_no, n_out, skipped, fetches, status, err, bad_start, bad_end = kernel(
                buf, pos, final, line_no, ifetch, skip_bad, va_bits, out_rw, out_addr, n_out)
            stats.skipped_lines += skipped
            stats.fetches += fetches
            stats.lines_read = line_no - 1
            if status == BAD:
                raise bad_line_error(path, line_no, err, buf[bad_start:bad_end].tobytes(), what, va_bits)
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
        raise TraceError(no_accesses(path, stats))


def no_accesses(path: str, stats: ParseStats) -> str:
    """The message for a trace that gave no access: with what it did hold, if anything."""
    held = []
    if stats.fetches:
        held.append(f"{stats.fetches:,} instruction fetches, replayed only with --ifetch")
    if stats.skipped_lines:
        held.append(f"{stats.skipped_lines} bad lines skipped")
    return f"{path}: no accesses" + (f" ({'; '.join(held)})" if held else "")
