"""What a workload is: a restartable, deterministic stream of op chunks.

The engine pulls ``chunks()`` and may start over at any time (the TUI's
restart, a second study run), so a workload is a recipe, not an iterator.
Every chunk holds exactly ``chunk_ops`` ops except the last, whatever sizes the
workload generates internally: the stream's content never depends on the
chunk size.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator

import numpy as np

from .errors import WorkloadError
from .ops import ACCESS, concat

DEFAULT_CHUNK = 1 << 16
# Internal generation granularity of the synthetic workloads (independent of chunk_ops).
BLOCK_OPS = 1 << 16


class Workload(ABC):
    """A named, restartable op stream. ``n_ops`` is the total if known, else None."""

    name: str = ""
    description: str = ""
    # Ops before the measured phase (tlbstress initialising its heap): report, study and the app
    # restart the counters after them.
    warmup_ops: int = 0
    # Made step by step in Python (the OS workloads), slow enough that a run makes it in a child process beside
    # it where there is a core to spare (child_stream.py).
    costly_to_generate: bool = False

    @property
    def n_ops(self) -> int | None:
        return None

    @property
    def counts_by_generating(self) -> bool:
        """Whether ``n_ops`` would generate the whole stream to learn it (``count.py`` then counts elsewhere)."""
        return False

    @abstractmethod
    def chunks(self, chunk_ops: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
        """OP_DTYPE arrays from the start of the stream; each call starts over."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class BlockWorkload(Workload):
    """A workload that generates blocks of any size; ``chunks`` evens them out."""

    def chunks(self, chunk_ops: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
        return rechunk(self._blocks(), check_chunk_ops(chunk_ops))

    @abstractmethod
    def _blocks(self) -> Iterator[np.ndarray]:
        """The stream as op arrays of whatever sizes are convenient to generate."""


def check_chunk_ops(chunk_ops: int) -> int:
    if int(chunk_ops) < 1:
        raise WorkloadError(f"chunk_ops must be at least 1, not {chunk_ops}")
    return int(chunk_ops)


def rechunk(blocks: Iterable[np.ndarray], chunk_ops: int) -> Iterator[np.ndarray]:
    """Re-split a stream of op arrays into arrays of exactly ``chunk_ops`` (the last may be shorter).

    Blocks are passed through or sliced without copying when they line up; only
    pieces straddling a chunk boundary are concatenated.
    """
    pending: list[np.ndarray] = []
    have = 0
    for block in blocks:
        n = len(block)
        if n == 0:
            continue
        start = 0
        if have:
            take = min(chunk_ops - have, n)
            pending.append(block[:take])
            have += take
            start = take
            if have < chunk_ops:
                continue
            yield np.concatenate(pending)
            pending, have = [], 0
        while n - start >= chunk_ops:
            yield block[start : start + chunk_ops]
            start += chunk_ops
        if start < n:
            pending.append(block[start:])
            have = n - start
    if have:
        yield np.concatenate(pending)


def batched(parts: Iterable[np.ndarray], min_ops: int = BLOCK_OPS) -> Iterator[np.ndarray]:
    """Concatenate many small op arrays (one process step, one request) into blocks of at least ``min_ops``."""
    pending: list[np.ndarray] = []
    have = 0
    for part in parts:
        pending.append(part)
        have += len(part)
        if have >= min_ops:
            yield concat(pending)
            pending, have = [], 0
    if have:
        yield concat(pending)


class _TakeAccesses(Workload):
    """The prefix of a workload up to and including its ``limit``-th ACCESS op."""

    def __init__(self, inner: Workload, limit: int):
        self.inner = inner
        self.limit = limit
        self.name = inner.name
        self.description = inner.description
        self._n_ops: int | None = None

    @property
    def n_ops(self) -> int | None:
        """Known after one full pass."""
        return self._n_ops

    def chunks(self, chunk_ops: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
        left = self.limit
        total = 0
        for chunk in self.inner.chunks(chunk_ops):
            is_access = chunk["kind"] == ACCESS
            count = int(np.count_nonzero(is_access))
            if count >= left:
                chunk = chunk[: int(np.flatnonzero(is_access)[left - 1]) + 1]
            left -= count
            total += len(chunk)
            yield chunk
            if left <= 0:
                break
        self._n_ops = total


def take_accesses(workload: Workload, limit: int) -> Workload:
    """``workload`` cut after its first ``limit`` accesses (for replaying part of a long trace)."""
    if limit < 1:
        raise WorkloadError(f"accesses must be at least 1, not {limit}")
    return _TakeAccesses(workload, limit)
