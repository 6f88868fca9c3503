"""A trace input as a stream of byte blocks, read once from its start, gzip-compressed or not.

The input may be a file, a FIFO, a process substitution (``<(zcat t.gz)``)
or stdin (``-``): it is opened once and read once. Compression is told by the
magic bytes at the start of the stream, the trace format by its first
decompressed bytes (``peek``), and those bytes are handed to the parser again
by ``blocks``, so nothing is opened or read twice and a pipe works as a file
does. Blocks are bounded (even a gzip bomb yields at most ``BLOCK`` bytes at a
time) so parsing a trace of any size takes bounded memory. Read and
decompression failures come out of ``blocks`` as ``ReadError`` so the parser
can add the line it had reached.
"""

from __future__ import annotations

import os
import stat
import sys
import zlib
from collections.abc import Iterator

from .errors import TraceError

BLOCK = 4 << 20  # decompressed bytes handed to the parser at a time
RAW_BLOCK = 1 << 20  # compressed bytes read at a time
GZIP_MAGIC = b"\x1f\x8b"
STDIN = "-"  # the path that names standard input


class ReadError(Exception):
    """The input could not be read or decompressed past some point; ``str(e)`` says why."""


def display_name(path: str) -> str:
    return "stdin" if path == STDIN else path


def open_problem(path: str, e: OSError | None = None) -> str:
    """Why ``path`` cannot be opened as a trace (from the error opening it, or from a stat): one line."""
    if e is None:
        try:
            mode = os.stat(path).st_mode
        except OSError as err:
            e = err
        else:
            return f"{path}: is a directory, not a trace file" if stat.S_ISDIR(mode) else ""
    if isinstance(e, FileNotFoundError):
        return f"{path}: no such file"
    if isinstance(e, IsADirectoryError):
        return f"{path}: is a directory, not a trace file"
    return f"{path}: cannot open: {e.strerror or e}"


def is_replayable(path: str) -> bool:
    """Whether the input can be read again from its start (a regular file; not a pipe or stdin)."""
    return path != STDIN and os.path.isfile(path)


def replay_problem(path: str) -> str:
    """Why ``path`` cannot be replayed from its start as often as asked (missing, a directory, a pipe), or ""."""
    problem = "" if path == STDIN else open_problem(path)
    if not problem and not is_replayable(path):
        problem = (f"{display_name(path)}: a pipe or stdin can be read only once, and the app replays a trace "
                   "from its start (r, l, w); save it to a file, or stream it through `rvi-tui report`")
    return problem


class ByteStream:
    """One pass over an input: ``peek`` at its first bytes, then ``blocks`` from the very start."""

    def __init__(self, path: str):
        self.path = path
        self.name = display_name(path)
        if path == STDIN:
            self._file, self._owned = sys.stdin.buffer, False
        else:
            try:
                self._file, self._owned = open(path, "rb"), True
            except OSError as e:
                raise TraceError(open_problem(path, e)) from None
        self._source = self._read()
        self._peeked: list[bytes] = []
        self.used = False  # blocks() was called: the stream cannot be read again

    def peek(self, n: int) -> bytes:
        """At least the first ``n`` decompressed bytes (fewer only if that is all); TraceError if unreadable."""
        have = sum(map(len, self._peeked))
        try:
            while have < n:
                block = next(self._source, None)
                if block is None:
                    break
                self._peeked.append(block)
                have += len(block)
        except ReadError as e:
            raise TraceError(f"{self.name}: {e}") from None
        return b"".join(self._peeked)

    def blocks(self) -> Iterator[bytes]:
        """The decompressed content from its start in blocks of at most ``BLOCK`` bytes (once)."""
        if self.used:
            raise TraceError(f"{self.name}: a pipe or stdin can be read only once; save it to a file to replay it")
        self.used = True
        while self._peeked:
            yield self._peeked.pop(0)
        yield from self._source

    def close(self) -> None:
        self._source.close()

    def _read(self) -> Iterator[bytes]:
        f = self._file
        try:
            first = f.read(RAW_BLOCK)
            if first[:2] == GZIP_MAGIC:
                yield from _gunzip(first, f)
            else:
                for i in range(0, len(first), BLOCK):
                    yield first[i : i + BLOCK]
                while data := f.read(BLOCK):
                    yield data
        except OSError as e:
            raise ReadError(f"read error: {e.strerror or e}") from None
        finally:
            if self._owned:
                f.close()


def _gunzip(first: bytes, f) -> Iterator[bytes]:
    """Every gzip member in turn; a stream that stops before a member's end is an error."""
    d = None
    raw = first
    while raw:
        while raw:
            if d is None:
                d = zlib.decompressobj(wbits=31)
            try:
                while True:
                    out = d.decompress(raw, BLOCK)
                    if out:
                        yield out
                    raw = d.unconsumed_tail
                    # a full block may leave output pending inside zlib: ask again
                    if d.eof or (not raw and len(out) < BLOCK):
                        break
            except zlib.error as e:
                raise ReadError(f"corrupt gzip data ({e})") from None
            if d.eof:
                raw = d.unused_data
                d = None
        raw = f.read(RAW_BLOCK)
    if d is not None:
        raise ReadError("gzip stream is truncated")
