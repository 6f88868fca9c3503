"""Real traces as workloads: format detection and the ``open_trace`` entry point.

The format is told from the content (npy magic, then which line grammar the
first lines follow), never from the file name, and gzip is told from its magic
bytes; ``fmt`` overrides the guess. Both are told from the first bytes of the
one stream the trace is then parsed from, so a pipe or stdin works. A trace
yields ACCESS ops only: the engine's guest OS maps the addresses it has not
seen on demand.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import numpy as np

from .base import DEFAULT_CHUNK, Workload, check_chunk_ops, rechunk
from .bytestream import STDIN, ByteStream, display_name, is_replayable
from .errors import TraceError, WorkloadError
from .lackey import parse_lackey
from .npyfile import NPY_MAGIC, npy_chunks, read_header
from .plaintext import parse_text
from .textparse import BAD, E_SYNTAX, FULL, MAX_LINE, ParseStats, parse_file, snippet

FORMATS = ("lackey", "text", "npy")
_KERNELS = {"lackey": parse_lackey, "text": parse_text}
SNIFF = MAX_LINE  # bytes of content the format is guessed from


def va_bits_of(levels: int) -> int:
    """48 for 4-level paging, 57 for 5-level (LA57)."""
    if levels not in (4, 5):
        raise WorkloadError(f"levels must be 4 or 5, not {levels}")
    return 12 + 9 * levels


def _sniff(source: ByteStream) -> tuple[bytes, bool]:
    """The first complete lines of the (decompressed) content, up to SNIFF bytes, and whether that is all of it."""
    got = source.peek(SNIFF + 1)
    if len(got) <= SNIFF:
        return got, True
    cut = got.rfind(b"\n", 0, SNIFF)
    if cut < 0:
        raise TraceError(f"{source.name}:1: line longer than {MAX_LINE} bytes (not a text trace?)")
    return got[: cut + 1], False


def _trial(kernel, buf: np.ndarray, final: bool, skip_bad: bool, va_bits: int):
    """(accesses, skipped lines, first bad line number or None, its bytes, why it is bad) from running
    ``kernel`` over ``buf``."""
    out_rw = np.empty(4096, dtype=np.uint8)
    out_addr = np.empty(4096, dtype=np.uint64)
    pos, line_no, total, skipped = 0, 1, 0, 0
    while True:
        pos, line_no, n_out, more, _fetches, status, err, bad_start, bad_end = kernel(
            buf, pos, final, line_no, True, skip_bad, va_bits, out_rw, out_addr, 0)
        total += n_out
        skipped += more
        if status == BAD:
            return total, skipped, line_no, buf[bad_start:bad_end].tobytes(), err
        if status != FULL:
            return total, skipped, None, b"", 0


def file_sha256(path: str) -> str:
    """A trace's identity by content: session files and sweeps use it to know a trace is the same one."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def detect_format(source: ByteStream, va_bits: int = 48) -> str:
    """"lackey", "text" or "npy" for the trace whose first bytes ``source`` peeks at; TraceError if it is
    none of them or has no accesses."""
    if source.peek(len(NPY_MAGIC)).startswith(NPY_MAGIC):
        return "npy"
    head, whole = _sniff(source)
    buf = np.frombuffer(head, dtype=np.uint8)
    scores = {}
    first_bad = []
    empty = False
    for fmt, kernel in _KERNELS.items():
        accesses, skipped, _, _, _ = _trial(kernel, buf, whole, True, va_bits)
        _, _, bad_line, bad_raw, err = _trial(kernel, buf, whole, False, va_bits)
        if accesses or err not in (0, E_SYNTAX):  # a line in this format, with a bad address or size
            # fewer bad lines first, then the later first bad line; lackey wins a tie (dict order)
            scores[fmt] = (skipped, -(bad_line or len(head) + 1))
        elif bad_line is None:
            empty = True  # nothing but blank lines, comments or banners in this format
        else:
            first_bad.append((bad_line, bad_raw))
    if scores:
        return min(scores, key=scores.get)
    if empty:
        raise TraceError(f"{source.name}: no accesses")
    line, raw = max(first_bad)
    raise TraceError(f"{source.name}:{line}: not a lackey, text or npy trace: {snippet(raw)}")


class TraceWorkload(Workload):
    """A trace replayed as ACCESS ops of one process (``pid``).

    The first pass reads ``source`` (opened by ``open_trace``, its first bytes
    already peeked at); later passes open a regular file again, while a pipe
    or stdin can be read only once. After a complete pass, ``lines_read`` and
    ``skipped_lines`` describe it (ops rather than lines for npy) and
    ``n_ops`` is known.
    """

    def __init__(self, path: str, fmt: str, *, ifetch: bool = False, skip_bad_lines: bool = False, pid: int = 1,
                 levels: int = 4, name: str | None = None, description: str | None = None,
                 source: ByteStream | None = None):
        self.path = path
        self.fmt = fmt
        self.ifetch = bool(ifetch)
        self.skip_bad_lines = bool(skip_bad_lines)
        self.pid = pid
        self.va_bits = va_bits_of(levels)
        self.name = name or ("stdin" if path == STDIN else _stem(path))
        self.description = description or f"{fmt} trace {display_name(path)}"
        self._stats = ParseStats()
        self._source = source
        self._npy = read_header(self._open().peek(SNIFF), display_name(path)) if fmt == "npy" else None

    @property
    def lines_read(self) -> int:
        return self._stats.lines_read

    @property
    def skipped_lines(self) -> int:
        return self._stats.skipped_lines

    @property
    def n_ops(self) -> int | None:
        if self._npy is not None and not self.skip_bad_lines:
            return self._npy[1]
        return self._stats.ops if self._stats.complete else None

    def _open(self) -> ByteStream:
        """The stream the next pass reads: the one opened by open_trace until it is used, then a new one."""
        if self._source is None or self._source.used and is_replayable(self.path):
            self._source = ByteStream(self.path)
        return self._source

    def chunks(self, chunk_ops: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
        chunk_ops = check_chunk_ops(chunk_ops)
        self._stats = stats = ParseStats()
        source = self._open()
        if self.fmt == "npy":
            header, n = self._npy
            return rechunk(npy_chunks(source.blocks(), source.name, header, n, chunk_ops,
                                      skip_bad=self.skip_bad_lines, va_bits=self.va_bits, stats=stats), chunk_ops)
        return parse_file(source, _KERNELS[self.fmt], self.fmt, chunk_ops=chunk_ops, ifetch=self.ifetch,
                          skip_bad=self.skip_bad_lines, va_bits=self.va_bits, pid=self.pid, stats=stats)


def _stem(path: str) -> str:
    name = os.path.basename(path)
    for ext in (".gz", ".npy", ".lackey", ".txt", ".trace", ".log"):
        if name.endswith(ext) and len(name) > len(ext):
            name = name[: -len(ext)]
    return name


def open_trace(path, fmt: str | None = None, *, ifetch: bool = False, skip_bad_lines: bool = False,
               pid: int = 1, levels: int = 4) -> TraceWorkload:
    """A trace as a workload: a file, a FIFO or stdin (``"-"``), read once; ``fmt`` ("lackey", "text",
    "npy") or None to detect it from the content's first bytes.

    ``ifetch`` keeps instruction fetches (lackey ``I`` lines, text ``X`` lines);
    ``pid`` is the process the accesses belong to (npy files carry their own);
    ``levels`` the guest's paging depth, which says which addresses are user
    addresses. Errors found while opening raise here, the rest while iterating.
    """
    path = os.fspath(path)
    if fmt is not None and fmt not in FORMATS:
        raise WorkloadError(f"unknown trace format {fmt!r} (known: {', '.join(FORMATS)})")
    if not 0 <= int(pid) < 1 << 32:
        raise WorkloadError(f"pid must be between 0 and 2**32-1, not {pid}")
    source = ByteStream(path)
    if fmt is None:
        fmt = detect_format(source, va_bits_of(levels))
    return TraceWorkload(path, fmt, ifetch=ifetch, skip_bad_lines=skip_bad_lines, pid=int(pid), levels=levels,
                         source=source)
