"""Real traces as workloads: format detection and the ``open_trace`` entry point.

The format is told from the content (npy magic, then which line grammar the
first lines follow), never from the file name, and gzip is told from its magic
bytes; ``fmt`` overrides the guess. A trace yields ACCESS ops only: the
engine's guest OS maps the addresses it has not seen on demand.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import numpy as np

from .base import DEFAULT_CHUNK, Workload, check_chunk_ops, rechunk
from .bytestream import ReadError, blocks, open_file
from .errors import TraceError, WorkloadError
from .lackey import parse_lackey
from .npyfile import NPY_MAGIC, load_ops, npy_chunks
from .plaintext import parse_text
from .textparse import BAD, FULL, MAX_LINE, ParseStats, parse_file, snippet

FORMATS = ("lackey", "text", "npy")
_KERNELS = {"lackey": parse_lackey, "text": parse_text}
SNIFF = MAX_LINE  # bytes of content the format is guessed from


def _sniff(path: str) -> tuple[bytes, bool]:
    """The first complete lines of the (decompressed) content, up to SNIFF bytes, and whether that is all of it."""
    got = b""
    try:
        for block in blocks(path):
            got += block
            if len(got) > SNIFF:
                break
        else:
            return got, True
    except ReadError as e:
        raise TraceError(f"{path}: {e}") from None
    if got.startswith(NPY_MAGIC):
        return got, False
    cut = got.rfind(b"\n", 0, SNIFF)
    if cut < 0:
        raise TraceError(f"{path}:1: line longer than {MAX_LINE} bytes (not a text trace?)")
    return got[: cut + 1], False


def _trial(kernel, buf: np.ndarray, final: bool, skip_bad: bool):
    """(accesses, skipped lines, first bad line number or None, its bytes) from running ``kernel`` over ``buf``."""
    out_rw = np.empty(4096, dtype=np.uint8)
    out_addr = np.empty(4096, dtype=np.uint64)
    pos, line_no, total, skipped = 0, 1, 0, 0
    while True:
        pos, line_no, n_out, more, status, _err, bad_start, bad_end = kernel(
            buf, pos, final, line_no, True, skip_bad, out_rw, out_addr, 0)
        total += n_out
        skipped += more
        if status == BAD:
            return total, skipped, line_no, buf[bad_start:bad_end].tobytes()
        if status != FULL:
            return total, skipped, None, b""


def file_sha256(path: str) -> str:
    """A trace's identity by content: session files and sweeps use it to know a trace is the same one."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def detect_format(path) -> str:
    """"lackey", "text" or "npy" for the trace at ``path``; TraceError if it is none of them or has no accesses."""
    path = os.fspath(path)
    with open_file(path) as f:
        try:
            if f.read(len(NPY_MAGIC)) == NPY_MAGIC:
                return "npy"
        except OSError as e:
            raise TraceError(f"{path}: cannot read: {e.strerror or e}") from None
    head, whole = _sniff(path)
    if head.startswith(NPY_MAGIC):
        raise TraceError(f"{path}: a gzip-compressed .npy op file cannot be memory-mapped; decompress it first")
    buf = np.frombuffer(head, dtype=np.uint8)
    scores = {}
    first_bad = []
    empty = False
    for fmt, kernel in _KERNELS.items():
        accesses, skipped, _, _ = _trial(kernel, buf, whole, True)
        _, _, bad_line, bad_raw = _trial(kernel, buf, whole, False)
        if accesses:
            # fewer bad lines first, then the later first bad line; lackey wins a tie (dict order)
            scores[fmt] = (skipped, -(bad_line or len(head) + 1))
        elif bad_line is None:
            empty = True  # nothing but blank lines, comments or banners in this format
        else:
            first_bad.append((bad_line, bad_raw))
    if scores:
        return min(scores, key=scores.get)
    if empty:
        raise TraceError(f"{path}: no accesses")
    line, raw = max(first_bad)
    raise TraceError(f"{path}:{line}: not a lackey, text or npy trace: {snippet(raw)}")


class TraceWorkload(Workload):
    """A trace file replayed as ACCESS ops of one process (``pid``).

    After a complete pass, ``lines_read`` and ``skipped_lines`` describe it
    (ops rather than lines for npy) and ``n_ops`` is known.
    """

    def __init__(self, path: str, fmt: str, *, ifetch: bool = False, skip_bad_lines: bool = False, pid: int = 1,
                 name: str | None = None, description: str | None = None):
        self.path = path
        self.fmt = fmt
        self.ifetch = bool(ifetch)
        self.skip_bad_lines = bool(skip_bad_lines)
        self.pid = pid
        self.name = name or _stem(path)
        self.description = description or f"{fmt} trace {path}"
        self._stats = ParseStats()
        self._npy_len = len(load_ops(path)) if fmt == "npy" else None

    @property
    def lines_read(self) -> int:
        return self._stats.lines_read

    @property
    def skipped_lines(self) -> int:
        return self._stats.skipped_lines

    @property
    def n_ops(self) -> int | None:
        if self._npy_len is not None and not self.skip_bad_lines:
            return self._npy_len
        return self._stats.ops if self._stats.complete else None

    def chunks(self, chunk_ops: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
        chunk_ops = check_chunk_ops(chunk_ops)
        self._stats = stats = ParseStats()
        if self.fmt == "npy":
            return rechunk(npy_chunks(self.path, chunk_ops, skip_bad=self.skip_bad_lines, stats=stats), chunk_ops)
        return parse_file(self.path, _KERNELS[self.fmt], self.fmt, chunk_ops=chunk_ops, ifetch=self.ifetch,
                          skip_bad=self.skip_bad_lines, pid=self.pid, stats=stats)


def _stem(path: str) -> str:
    name = os.path.basename(path)
    for ext in (".gz", ".npy", ".lackey", ".txt", ".trace", ".log"):
        if name.endswith(ext) and len(name) > len(ext):
            name = name[: -len(ext)]
    return name


def open_trace(path, fmt: str | None = None, *, ifetch: bool = False, skip_bad_lines: bool = False,
               pid: int = 1) -> TraceWorkload:
    """A trace file as a workload; ``fmt`` ("lackey", "text", "npy") or None to detect it from the content.

    ``ifetch`` keeps instruction fetches (lackey ``I`` lines, text ``X`` lines);
    ``pid`` is the process the accesses belong to (npy files carry their own).
    Errors found while opening raise here, the rest while iterating.
    """
    path = os.fspath(path)
    if fmt is not None and fmt not in FORMATS:
        raise WorkloadError(f"unknown trace format {fmt!r} (known: {', '.join(FORMATS)})")
    if not 0 <= int(pid) < 1 << 32:
        raise WorkloadError(f"pid must be between 0 and 2**32-1, not {pid}")
    if fmt is None:
        fmt = detect_format(path)
    elif fmt != "npy":
        # open it now so a missing file fails here rather than at the first chunk
        with open_file(path):
            pass
    return TraceWorkload(path, fmt, ifetch=ifetch, skip_bad_lines=skip_bad_lines, pid=int(pid))

