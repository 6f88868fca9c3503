"""A trace file as a stream of byte blocks, gzip-compressed or not.

Compression is told by the magic bytes, not the name. Blocks are bounded
(even a gzip bomb yields at most ``BLOCK`` bytes at a time) so parsing a
trace of any size takes bounded memory. Read and decompression failures come
out as ``ReadError`` so the parser can add the line it had reached.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from .errors import TraceError

BLOCK = 4 << 20  # decompressed bytes handed to the parser at a time
RAW_BLOCK = 1 << 20  # compressed bytes read at a time
GZIP_MAGIC = b"\x1f\x8b"


class ReadError(Exception):
    """The file could not be read or decompressed past some point; ``str(e)`` says why."""


def open_file(path: str):
    """The file opened for binary reading; TraceError naming it if it cannot be."""
    try:
        return open(path, "rb")
    except OSError as e:
        raise TraceError(f"{path}: cannot open: {e.strerror or e}") from None


def is_gzip(path: str) -> bool:
    with open_file(path) as f:
        try:
            return f.read(2) == GZIP_MAGIC
        except OSError as e:
            raise TraceError(f"{path}: cannot read: {e.strerror or e}") from None


def blocks(path: str) -> Iterator[bytes]:
    """The file's (decompressed) content in blocks of at most ``BLOCK`` bytes."""
    gz = is_gzip(path)
    with open_file(path) as f:
        try:
            yield from (_gunzip(f) if gz else _plain(f))
        except OSError as e:
            raise ReadError(f"read error: {e.strerror or e}") from None


def _plain(f) -> Iterator[bytes]:
    while data := f.read(BLOCK):
        yield data


def _gunzip(f) -> Iterator[bytes]:
    """Every gzip member in turn; a stream that stops before a member's end is an error."""
    d = None
    while raw := f.read(RAW_BLOCK):
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
    if d is not None:
        raise ReadError("gzip stream is truncated")

