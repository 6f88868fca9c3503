"""Guest-OS-heavy workloads: the MMU-intensive versus TLB-intensive contrast of the VMware study.

``kcompile``, ``webserver`` and ``mmapchurn`` change page tables all the time
(fork, exec, exit, mmap, munmap, copy-on-write, context switches): under
shadow paging each of those traps to the hypervisor, under nested paging none
does. ``tlbstress`` barely touches page tables but misses the TLB on almost
every access, where nested paging's two-dimensional walk costs the most.

Streams follow the engine's op semantics: pid 1 exists and is current at the
start; FORK leaves the parent current; after an EXIT the stream SWITCHes to a
live process before the next ACCESS. Each is generated process by process (or
request by request) with vectorised accesses inside, from one generator seeded
by ``seed``.
"""

from __future__ import annotations

import zlib
from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from . import ops
from .base import BLOCK_OPS, BlockWorkload, batched
from .errors import WorkloadError
from .sampling import KeyedPermutation, zipf_ranks
from .synthetic import PAGE, Random

# A conventional x86-64 Linux process layout.
TEXT_BASE = 0x0040_0000
HEAP_BASE = 0x0200_0000
MMAP_BASE = 0x7F00_0000_0000
STACK_TOP = 0x7FFF_FFFF_F000

KiB = 1 << 10
MiB = 1 << 20


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise WorkloadError(message)


def _pages(rng: np.random.Generator, low: int, high: int) -> int:
    """A random length in bytes, a whole number of pages in [low, high]."""
    return int(rng.integers(low // PAGE, high // PAGE + 1)) * PAGE


@dataclass
class Region:
    """A mapped range a process touches with Zipf locality over its pages.

    ``order`` fixes which pages are hot for the life of the region; a stack's
    hot pages are the ones nearest its top instead.
    """

    start: int
    length: int
    write_frac: float = 0.0
    fetch: bool = False
    stack: bool = False
    alpha: float = 1.0
    order: KeyedPermutation | None = None

    @classmethod
    def new(cls, rng: np.random.Generator, start: int, length: int, **kw) -> Region:
        region = cls(start, length, **kw)
        if not region.stack:
            region.order = KeyedPermutation(length // PAGE, rng)
        return region

    def mmap(self, pid: int) -> np.ndarray:
        return ops.mmap(pid, self.start, self.length, writable=not self.fetch, huge=not self.fetch)


def touch(rng: np.random.Generator, pid: int, regions: list[Region], weights: list[float], n: int) -> np.ndarray:
    """``n`` accesses spread over ``regions`` by ``weights``: fetches from code, reads and writes elsewhere."""
    p = np.asarray(weights, dtype=np.float64)
    which = rng.choice(len(regions), size=n, p=p / p.sum())
    addrs = np.empty(n, dtype=np.uint64)
    rw = np.empty(n, dtype=np.uint8)
    for i, region in enumerate(regions):
        sel = np.flatnonzero(which == i)
        if not sel.size:
            continue
        pages = region.length // PAGE
        rank = zipf_ranks(rng, pages, region.alpha, sel.size)
        page = np.uint64(pages - 1) - rank if region.stack else region.order(rank)
        offset = rng.integers(0, PAGE // 8, size=sel.size, dtype=np.uint64) * np.uint64(8)
        addrs[sel] = np.uint64(region.start) + page * np.uint64(PAGE) + offset
        rw[sel] = ops.FETCH if region.fetch else (rng.random(sel.size) < region.write_frac)
    return ops.accesses(addrs, rw, pid)


def sweep(rng: np.random.Generator, pid: int, start: int, length: int, rw: int) -> np.ndarray:
    """One access per page of [start, start+length), in address order (first touch of a fresh mapping)."""
    pages = np.arange(length // PAGE, dtype=np.uint64)
    offset = rng.integers(0, PAGE // 8, size=pages.size, dtype=np.uint64) * np.uint64(8)
    return ops.accesses(np.uint64(start) + pages * np.uint64(PAGE) + offset, rw, pid)


class _OsWorkload(BlockWorkload):
    """Shared plumbing: seeding, validation, and an op count learnt from a full pass (or one made to find it)."""

    costly_to_generate = True

    def __init__(self, seed: int):
        _check(int(seed) >= 0, f"seed must be a non-negative integer, not {seed}")
        self.seed = int(seed)
        self._n_ops: int | None = None

    @property
    def n_ops(self) -> int:
        if self._n_ops is None:
            for _ in self._blocks():
                pass
        return self._n_ops

    @property
    def counts_by_generating(self) -> bool:
        return self._n_ops is None

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng([self.seed, zlib.crc32(self.name.encode())])

    def _blocks(self) -> Iterator[np.ndarray]:
        total = 0
        for block in batched(self._steps(self._rng())):
            total += len(block)
            yield block
        self._n_ops = total

    @abstractmethod
    def _steps(self, rng: np.random.Generator) -> Iterator[np.ndarray]:
        """The stream as small op arrays, one process step or request at a time."""


class KCompile(_OsWorkload):
    name = "kcompile"
    description = "kernel-compile-like: make forks a short-lived compiler per job (fork, exec, mmap, COW, exit); MMU-intensive"

    def __init__(self, *, jobs: int = 200, seed: int = 1):
        super().__init__(seed)
        _check(1 <= int(jobs) <= 100_000, f"jobs must be between 1 and 100000, not {jobs}")
        self.jobs = int(jobs)

    def _steps(self, rng):
        # make itself: reads its dependency graph on the heap between jobs
        make = [
            Region.new(rng, TEXT_BASE, 256 * KiB, fetch=True),
            Region.new(rng, TEXT_BASE + 256 * KiB, 64 * KiB, write_frac=0.2),
            Region.new(rng, HEAP_BASE, 1 * MiB, write_frac=0.1),
            Region(STACK_TOP - 128 * KiB, 128 * KiB, write_frac=0.5, stack=True),
        ]
        make_mix = [0.3, 0.1, 0.5, 0.1]
        yield ops.concat([r.mmap(1) for r in make])
        yield touch(rng, 1, make, make_mix, 2000)
        for child in range(2, self.jobs + 2):
            yield touch(rng, 1, make, make_mix, int(rng.integers(100, 501)))
            yield ops.concat([ops.fork(1, child), ops.switch(child)])
            # between fork and exec the child runs make's code and writes its stack: COW faults
            yield touch(rng, child, make, [0.4, 0.1, 0.1, 0.4], int(rng.integers(20, 81)))
            yield ops.exec_(child)
            yield from self._compiler(rng, child)
            yield ops.concat([ops.exit_(child), ops.switch(1)])

    def _compiler(self, rng, pid) -> Iterator[np.ndarray]:
        text = _pages(rng, 64 * KiB, 512 * KiB)
        data = _pages(rng, 16 * KiB, 128 * KiB)
        heap = _pages(rng, 64 * KiB, 512 * KiB)
        stack = _pages(rng, 32 * KiB, 256 * KiB)
        regions = [
            Region.new(rng, TEXT_BASE, text, fetch=True),
            Region.new(rng, TEXT_BASE + text, data, write_frac=0.3),
            Region.new(rng, HEAP_BASE, heap, write_frac=0.4),
            Region(STACK_TOP - stack, stack, write_frac=0.5, stack=True),
        ]
        mix = [0.35, 0.15, 0.35, 0.15]
        yield ops.concat([r.mmap(pid) for r in regions])
        work = int(rng.integers(1000, 6001))
        buffers = int(rng.integers(0, 4))
        # the compiler's work, interrupted by reading a few files through short-lived mappings
        for part in np.array_split(np.arange(work), buffers + 1):
            yield touch(rng, pid, regions, mix, part.size)
            if buffers:
                buffers -= 1
                length = _pages(rng, 16 * KiB, 256 * KiB)
                yield ops.mmap(pid, MMAP_BASE, length)
                yield sweep(rng, pid, MMAP_BASE, length, ops.WRITE)
                yield ops.munmap(pid, MMAP_BASE, length)


class WebServer(_OsWorkload):
    name = "webserver"
    description = "prefork web server: worker processes share code, each serves requests from its own heap; many context switches"

    def __init__(self, *, workers: int = 8, footprint: int = 4 * MiB, accesses: int = 1_000_000, seed: int = 1):
        super().__init__(seed)
        _check(1 <= int(workers) <= 4096, f"workers must be between 1 and 4096, not {workers}")
        _check(64 * KiB <= int(footprint) <= 64 << 30, f"footprint (per-worker heap) must be between 64 KiB and 64 GiB, not {footprint}")
        _check(int(accesses) >= 1, f"accesses must be at least 1, not {accesses}")
        self.workers = int(workers)
        self.footprint = -(-int(footprint) // PAGE) * PAGE
        self.accesses = int(accesses)

    def _steps(self, rng):
        left = self.accesses

        def budget(accesses: np.ndarray) -> np.ndarray:
            nonlocal left
            accesses = accesses[:left]
            left -= len(accesses)
            return accesses

        code = Region.new(rng, TEXT_BASE, 2 * MiB, fetch=True)
        shared = Region.new(rng, TEXT_BASE + 4 * MiB, 4 * MiB, write_frac=0.05)
        # the master loads code and configuration before forking, so workers inherit populated tables
        yield ops.concat([code.mmap(1), shared.mmap(1)])
        yield budget(sweep(rng, 1, code.start, code.length, ops.FETCH))
        yield budget(sweep(rng, 1, shared.start, shared.length, ops.WRITE))
        heaps = {}
        for pid in range(2, self.workers + 2):
            if pid > 2:
                yield ops.switch(1)
            yield ops.concat([ops.fork(1, pid), ops.switch(pid)])
            heaps[pid] = Region.new(rng, HEAP_BASE, self.footprint, write_frac=0.3)
            yield heaps[pid].mmap(pid)
            yield budget(sweep(rng, pid, HEAP_BASE, self.footprint, ops.WRITE))
        current = self.workers + 1
        while left > 0:
            pid = int(rng.integers(2, self.workers + 2))
            if pid != current:
                yield ops.switch(pid)
                current = pid
            yield budget(touch(rng, pid, [code, shared, heaps[pid]], [0.15, 0.1, 0.75], int(rng.integers(1000, 5001))))
            if left > 0 and rng.random() < 0.1:
                # a large response goes through a fresh buffer mapping
                length = _pages(rng, 64 * KiB, 512 * KiB)
                yield ops.mmap(pid, MMAP_BASE, length)
                yield budget(sweep(rng, pid, MMAP_BASE, length, ops.WRITE))
                yield ops.munmap(pid, MMAP_BASE, length)
        yield ops.concat([ops.exit_(pid) for pid in heaps] + [ops.switch(1)])


class TlbStress(Random):
    """A heap initialised page by page, then read at random: the measured phase of a TLB-bound benchmark.

    ``warmup_ops`` covers the mapping and the initialisation pass, so a report can
    leave first-touch faults out and count the steady state, as a benchmark's
    timed phase does (ChampSim's warm-up instructions serve the same end).

    ``spread`` spaces the heap's pages out: with ``spread=256`` only one 4 KiB page in
    every 1 MiB of the footprint is used. A footprint of many GiB then needs as many
    large pages as a dense heap of that size (so 2 MiB pages still overflow the TLB)
    while the simulation holds only the pages used and their tables.
    """

    name = "tlbstress"
    description = ("one process: initialise a 256 MiB heap, then read it uniformly at random (a TLB miss on almost "
                   "every access); TLB-intensive. spread=N uses one 4 KiB page in every N, so a heap of many GiB "
                   "stays cheap to simulate")

    def __init__(self, *, footprint: int = 256 << 20, accesses: int = 2_000_000, seed: int = 1,
                 write_frac: float = 0.05, spread: int = 1):
        super().__init__(footprint=footprint, accesses=accesses, seed=seed, write_frac=write_frac)
        spread = int(spread)
        _check(1 <= spread <= self.footprint // PAGE,
               f"spread must be between 1 and the footprint's pages ({self.footprint // PAGE}), not {spread}")
        self.spread = spread
        self.pages = self.footprint // PAGE // spread

    @property
    def warmup_ops(self) -> int:
        return 1 + self.pages

    @property
    def n_ops(self) -> int:
        return self.accesses + self.warmup_ops

    def _offsets(self, rng, start, n):
        if self.spread == 1:
            return super()._offsets(rng, start, n)
        page = self._page_offsets(rng.integers(0, self.pages, size=n, dtype=np.uint64))
        return page + rng.integers(0, PAGE // 8, size=n, dtype=np.uint64) * np.uint64(8)

    def _page_offsets(self, index: np.ndarray) -> np.ndarray:
        """Where page `index` of the heap lies: in slot `index` of `spread` pages, at a scattered place inside
        it (Knuth's multiplicative hash), so the pages used do not all share cache sets as 1 MiB-aligned
        addresses would."""
        if self.spread == 1:
            return index * np.uint64(PAGE)
        inside = (index * np.uint64(2654435761)) % np.uint64(self.spread)
        return (index * np.uint64(self.spread) + inside) * np.uint64(PAGE)

    def _blocks(self) -> Iterator[np.ndarray]:
        blocks = super()._blocks()
        yield next(blocks)  # the mmap
        pages = self._page_offsets(np.arange(self.pages, dtype=np.uint64)) + np.uint64(self.base)
        for i in range(0, len(pages), BLOCK_OPS):
            yield ops.accesses(pages[i : i + BLOCK_OPS], ops.WRITE, pid=self.pid)
        yield from blocks


class MmapChurn(_OsWorkload):
    name = "mmapchurn"
    description = "one process mapping a 64 KiB-2 MiB region, writing every page, unmapping it, over and over; MMU-intensive"

    def __init__(self, *, footprint: int = 2 * MiB, accesses: int = 500_000, seed: int = 1):
        super().__init__(seed)
        _check(PAGE <= int(footprint) <= 64 << 30, f"footprint (largest region) must be between 4 KiB and 64 GiB, not {footprint}")
        _check(int(accesses) >= 1, f"accesses must be at least 1, not {accesses}")
        self.footprint = -(-int(footprint) // PAGE) * PAGE
        self.smallest = min(64 * KiB, self.footprint)
        self.accesses = int(accesses)

    def _steps(self, rng):
        left = self.accesses
        while left > 0:
            length = _pages(rng, self.smallest, self.footprint)
            writes = sweep(rng, 1, MMAP_BASE, length, ops.WRITE)[:left]
            left -= len(writes)
            yield ops.concat([ops.mmap(1, MMAP_BASE, length), writes, ops.munmap(1, MMAP_BASE, length)])
