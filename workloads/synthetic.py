"""Synthetic single-process access patterns over one mapped region.

Each stream is one MMAP of the whole footprint at ``DATA_BASE`` followed by
``accesses`` ACCESS ops. Ops are generated in fixed blocks, each drawn from its
own generator seeded by (seed, pattern, block number): the stream is the same
for a seed whatever chunk size the engine asks for, and a block can be made
without replaying the ones before it.
"""

from __future__ import annotations

import zlib
from abc import abstractmethod
from collections.abc import Iterator

import numpy as np

from . import ops
from .base import BLOCK_OPS, BlockWorkload
from .errors import WorkloadError
from .sampling import KeyedPermutation, zipf_ranks

PAGE = 4096
DATA_BASE = 0x7F00_0000_0000
# The region must stay in the lower canonical half (below 2**47), whatever the guest's paging depth.
MAX_FOOTPRINT = (1 << 47) - DATA_BASE
DEFAULT_FOOTPRINT = 64 << 20
DEFAULT_ACCESSES = 1_000_000
_SHARED_KEY = 0xFFFF_FFFF


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise WorkloadError(message)


def _seq_offsets(index: np.ndarray, step: int, footprint: int) -> np.ndarray:
    return (index * np.uint64(step)) % np.uint64(footprint)


def _uniform_offsets(rng: np.random.Generator, n: int, footprint: int) -> np.ndarray:
    return rng.integers(0, footprint // 8, size=n, dtype=np.uint64) * np.uint64(8)


def _zipf_offsets(rng: np.random.Generator, n: int, alpha: float, pages: KeyedPermutation) -> np.ndarray:
    """Hot pages by Zipf rank, scattered over the footprint, at a random 8-byte slot inside the page."""
    page = pages(zipf_ranks(rng, pages.n, alpha, n))
    return page * np.uint64(PAGE) + rng.integers(0, PAGE // 8, size=n, dtype=np.uint64) * np.uint64(8)


class Synthetic(BlockWorkload):
    """Common machinery: validation, the initial MMAP, per-block seeding, the read/write mix."""

    def __init__(self, footprint: int, accesses: int, seed: int, write_frac: float, pid: int = 1, base: int = DATA_BASE):
        footprint, accesses, seed = int(footprint), int(accesses), int(seed)
        _check(PAGE <= footprint <= MAX_FOOTPRINT, f"footprint must be between 4 KiB and {MAX_FOOTPRINT >> 30} GiB, not {footprint} bytes")
        _check(accesses >= 1, f"accesses must be at least 1, not {accesses}")
        _check(seed >= 0, f"seed must be a non-negative integer, not {seed}")
        _check(0.0 <= write_frac <= 1.0, f"write_frac must be between 0 and 1, not {write_frac}")
        self.footprint = -(-footprint // PAGE) * PAGE
        self.accesses = accesses
        self.seed = seed
        self.write_frac = float(write_frac)
        self.pid = pid
        self.base = base
        self._salt = zlib.crc32(self.name.encode())

    @property
    def n_ops(self) -> int:
        return self.accesses + 1

    def _rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self._salt, *key])

    def _shared_rng(self) -> np.random.Generator:
        """The generator for state every block shares (a permutation), apart from the blocks' own."""
        return self._rng(_SHARED_KEY)

    @abstractmethod
    def _offsets(self, rng: np.random.Generator, start: int, n: int) -> np.ndarray:
        """Offsets into the footprint of accesses start .. start+n-1."""

    def _blocks(self) -> Iterator[np.ndarray]:
        yield ops.mmap(self.pid, self.base, self.footprint, writable=True, huge=True)
        for block, start in enumerate(range(0, self.accesses, BLOCK_OPS)):
            n = min(BLOCK_OPS, self.accesses - start)
            rng = self._rng(block)
            addrs = self._offsets(rng, start, n) + np.uint64(self.base)
            rw = (rng.random(n) < self.write_frac).astype(np.uint8) if self.write_frac else ops.READ
            yield ops.accesses(addrs, rw, pid=self.pid)


class Seq(Synthetic):
    name = "seq"
    description = "sequential 8-byte strides through the footprint, wrapping around (streaming)"

    def __init__(self, *, footprint: int = DEFAULT_FOOTPRINT, accesses: int = DEFAULT_ACCESSES, seed: int = 1,
                 write_frac: float = 0.0):
        super().__init__(footprint, accesses, seed, write_frac)

    def _offsets(self, rng, start, n):
        return _seq_offsets(np.arange(start, start + n, dtype=np.uint64), 8, self.footprint)


class Stride(Synthetic):
    name = "stride"
    description = "fixed stride (default 4 KiB: one access per page) through the footprint, wrapping around"

    def __init__(self, *, footprint: int = DEFAULT_FOOTPRINT, accesses: int = DEFAULT_ACCESSES, seed: int = 1,
                 write_frac: float = 0.0, stride: int = PAGE):
        super().__init__(footprint, accesses, seed, write_frac)
        _check(int(stride) >= 1, f"stride must be at least 1 byte, not {stride}")
        self.stride = int(stride)

    def _offsets(self, rng, start, n):
        return _seq_offsets(np.arange(start, start + n, dtype=np.uint64), self.stride, self.footprint)


class Random(Synthetic):
    name = "random"
    description = "uniformly random 8-byte-aligned reads over the footprint (no locality)"

    def __init__(self, *, footprint: int = DEFAULT_FOOTPRINT, accesses: int = DEFAULT_ACCESSES, seed: int = 1,
                 write_frac: float = 0.0):
        super().__init__(footprint, accesses, seed, write_frac)

    def _offsets(self, rng, start, n):
        return _uniform_offsets(rng, n, self.footprint)


class Zipf(Synthetic):
    name = "zipf"
    description = "hot/cold: pages drawn by Zipf popularity (alpha 1.1), hot pages scattered over the footprint"

    def __init__(self, *, footprint: int = DEFAULT_FOOTPRINT, accesses: int = DEFAULT_ACCESSES, seed: int = 1,
                 write_frac: float = 0.3, alpha: float = 1.1):
        super().__init__(footprint, accesses, seed, write_frac)
        _check(float(alpha) >= 0.0, f"alpha must be non-negative, not {alpha}")
        self.alpha = float(alpha)
        self._pages = KeyedPermutation(self.footprint // PAGE, self._shared_rng())

    def _offsets(self, rng, start, n):
        return _zipf_offsets(rng, n, self.alpha, self._pages)


class Chase(Synthetic):
    name = "chase"
    description = "pointer chase: follows one random cycle through every 64-byte node of the footprint"

    def __init__(self, *, footprint: int = DEFAULT_FOOTPRINT, accesses: int = DEFAULT_ACCESSES, seed: int = 1,
                 write_frac: float = 0.3, node: int = 64):
        super().__init__(footprint, accesses, seed, write_frac)
        node = int(node)
        _check(node >= 8 and node % 8 == 0 and node <= self.footprint,
               f"node must be a multiple of 8 bytes no larger than the footprint, not {node}")
        self.node = node
        self.nodes = self.footprint // node
        # Visiting perm(0), perm(1), ... perm(n-1) and back to perm(0) is a single
        # cycle through all nodes: node perm(i) holds the pointer to perm(i+1).
        self._order = KeyedPermutation(self.nodes, self._shared_rng())

    def _offsets(self, rng, start, n):
        step = np.arange(start, start + n, dtype=np.uint64) % np.uint64(self.nodes)
        return self._order(step) * np.uint64(self.node)


class Phases(Synthetic):
    name = "phases"
    description = "program phases in turn over one footprint: sequential, then uniform random, then Zipf hot/cold"

    def __init__(self, *, footprint: int = DEFAULT_FOOTPRINT, accesses: int = DEFAULT_ACCESSES, seed: int = 1,
                 write_frac: float = 0.3, phase: int = 100_000, alpha: float = 1.1):
        super().__init__(footprint, accesses, seed, write_frac)
        _check(int(phase) >= 1, f"phase must be at least 1 access, not {phase}")
        _check(float(alpha) >= 0.0, f"alpha must be non-negative, not {alpha}")
        self.phase = int(phase)
        self.alpha = float(alpha)
        self._pages = KeyedPermutation(self.footprint // PAGE, self._shared_rng())

    def _offsets(self, rng, start, n):
        out = np.empty(n, dtype=np.uint64)
        i = start
        while i < start + n:
            number, into = divmod(i, self.phase)
            stop = min(start + n, (number + 1) * self.phase)
            piece = out[i - start : stop - start]
            kind = number % 3
            if kind == 0:
                # each sequential phase carries on where the previous one stopped
                first = (number // 3) * self.phase + into
                piece[:] = _seq_offsets(np.arange(first, first + len(piece), dtype=np.uint64), 8, self.footprint)
            elif kind == 1:
                piece[:] = _uniform_offsets(rng, len(piece), self.footprint)
            else:
                piece[:] = _zipf_offsets(rng, len(piece), self.alpha, self._pages)
            i = stop
        return out


PATTERNS = {cls.name: cls for cls in (Seq, Stride, Random, Zipf, Chase, Phases)}
