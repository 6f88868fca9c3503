"""One physical address space: a frame allocator and the table pages living in it.

The guest's (gPA) and the host's (hPA) are two instances. Table pages are rows
of one ``int64[rows, 512]`` array; ``rows[frame - base]`` maps a frame number
to its row (-1 for frames that hold no table), which is all a compiled walk
needs to read an entry by physical address.

Allocation keeps 4 KiB frames packed inside 2 MiB chunks so that aligned 2 MiB
and 1 GiB blocks stay available for large pages, the way a buddy allocator
keeps higher orders free.
"""

from __future__ import annotations

import numpy as np

from .errors import EngineError
from .fast_fault import pool_pop, pool_push
from .layout import POOL_FIRST, POOL_IN_USE, POOL_N

CHUNK_2M = 512  # 4 KiB frames in 2 MiB
CHUNK_1G = 512 * 512


class PhysicalMemory:
    def __init__(self, name: str, frames: int, base: int = 0):
        self.name = name
        self.base = base  # first frame number this space hands out
        self.limit = base + frames
        self.tables = np.zeros((64, 512), dtype=np.int64)
        self.rows = np.full(1024, -1, dtype=np.int32)
        self._free_rows: list[int] = []
        self._rows_used = 0
        self._next = base  # bump pointer, in frames, always 2 MiB aligned
        # the free 4 KiB frames, a stack the fast fault path pops and pushes too, and the frames in use (layout POOL_*)
        self.pool = np.zeros(POOL_FIRST + CHUNK_2M, dtype=np.int64)
        self._free_2m: list[int] = []
        self._free_1g: list[int] = []
        self.table_pages = 0

    @property
    def frames_in_use(self) -> int:
        return int(self.pool[POOL_IN_USE])

    def free_4k(self) -> list[int]:
        """The free 4 KiB frames, the next to hand out last."""
        return self.pool[POOL_FIRST : POOL_FIRST + self.pool[POOL_N]].tolist()

    # --- frames ---------------------------------------------------------------------
    @property
    def top(self) -> int:
        """The first frame never handed out: every frame allocated so far lies below it."""
        return self._next

    def _bump(self, frames: int) -> int:
        start = -(-self._next // frames) * frames
        while self._next < start:  # the gap before an aligned 1 GiB block stays usable
            self._free_2m.append(self._next)
            self._next += CHUNK_2M
        if start + frames > self.limit:
            raise EngineError(f"{self.name} memory exhausted ({(self.limit - self.base) >> 8} MiB); raise its size")
        self._next = start + frames
        return start

    def alloc(self, size_code: int = 0) -> int:
        """A free, naturally aligned block of 4 KiB (0), 2 MiB (1) or 1 GiB (2); returns its first frame."""
        pool = self.pool
        if size_code == 0:
            if not pool[POOL_N]:  # a 2 MiB chunk becomes 512 free frames, handed out lowest first
                chunk = self._free_2m.pop() if self._free_2m else self._bump(CHUNK_2M)
                pool[POOL_FIRST : POOL_FIRST + CHUNK_2M] = np.arange(chunk + CHUNK_2M - 1, chunk - 1, -1)
                pool[POOL_N] = CHUNK_2M
            return int(pool_pop(pool))
        if size_code == 1:
            frame = self._free_2m.pop() if self._free_2m else self._bump(CHUNK_2M)
        else:
            frame = self._free_1g.pop() if self._free_1g else self._bump(CHUNK_1G)
        pool[POOL_IN_USE] += 1 << (9 * size_code)
        return frame

    def free(self, frame: int, size_code: int = 0) -> None:
        if self.rows_of(frame) >= 0:
            raise EngineError(f"{self.name}: freeing table page {frame:#x} as data")
        if size_code == 0:
            self._pool_room(1)
            pool_push(self.pool, frame)
            return
        (self._free_2m if size_code == 1 else self._free_1g).append(frame)
        self.pool[POOL_IN_USE] -= 1 << (9 * size_code)

    def free_many(self, frames: np.ndarray, size_code: int) -> None:
        """free() on each of these blocks of one size, in order (a 4 KiB frame freed last is allocated first)."""
        if size_code or not len(frames):
            for frame in frames.tolist():
                self.free(frame, size_code)
            return
        slot = frames - self.base
        inside = (slot >= 0) & (slot < self.rows.shape[0])
        if (self.rows[slot[inside]] >= 0).any():
            frame = int(frames[inside][self.rows[slot[inside]] >= 0][0])
            raise EngineError(f"{self.name}: freeing table page {frame:#x} as data")
        self._pool_room(len(frames))
        n = int(self.pool[POOL_N])
        self.pool[POOL_FIRST + n: POOL_FIRST + n + len(frames)] = frames  # as pool_push on each
        self.pool[POOL_N] = n + len(frames)
        self.pool[POOL_IN_USE] -= len(frames)

    def _pool_room(self, frames: int) -> None:
        """Room on the free-frame stack for this many more, doubling it as often as needed."""
        while POOL_FIRST + int(self.pool[POOL_N]) + frames > len(self.pool):
            self.pool = np.concatenate([self.pool, np.zeros(len(self.pool), dtype=np.int64)])

    def is_free(self, frame: int) -> bool:
        """Whether frame lies in no allocated block (a linear search: for checks, not the hot path)."""
        return (frame >= self._next or frame in self.free_4k() or (frame & ~(CHUNK_2M - 1)) in self._free_2m
                or (frame & ~(CHUNK_1G - 1)) in self._free_1g)

    # --- table pages ------------------------------------------------------------------
    def alloc_table(self) -> int:
        """A zeroed table page; returns its frame."""
        frame = self.alloc(0)
        if self._free_rows:
            row = self._free_rows.pop()
        else:
            row = self._rows_used
            self._rows_used += 1
            if row >= self.tables.shape[0]:
                grown = np.zeros((self.tables.shape[0] * 2, 512), dtype=np.int64)
                grown[: self.tables.shape[0]] = self.tables
                self.tables = grown
        self.tables[row] = 0
        slot = frame - self.base
        if slot >= self.rows.shape[0]:
            grown = np.full(max(slot + 1, self.rows.shape[0] * 2), -1, dtype=np.int32)
            grown[: self.rows.shape[0]] = self.rows
            self.rows = grown
        self.rows[slot] = row
        self.table_pages += 1
        return frame

    def free_table(self, frame: int) -> None:
        row = self.row(frame)
        self.rows[frame - self.base] = -1
        self._free_rows.append(row)
        self.table_pages -= 1
        self.free(frame, 0)

    def rows_of(self, frame: int) -> int:
        slot = frame - self.base
        if 0 <= slot < self.rows.shape[0]:
            return int(self.rows[slot])
        return -1

    def is_table(self, frame: int) -> bool:
        return self.rows_of(frame) >= 0

    def row(self, frame: int) -> int:
        row = self.rows_of(frame)
        if row < 0:
            raise EngineError(f"{self.name}: frame {frame:#x} is not a table page")
        return row

    def read(self, frame: int, index: int) -> int:
        slot = frame - self.base
        if 0 <= slot < len(self.rows):  # the software walkers' hot path: row() inlined, .item() is fastest
            row = self.rows.item(slot)
            if row >= 0:
                return self.tables.item(row, index)
        return self.tables.item(self.row(frame), index)

    def write(self, frame: int, index: int, value: int) -> None:
        self.tables[self.row(frame), index] = value

    def table(self, frame: int) -> np.ndarray:
        """The 512 entries of a table page (a view: read-only use outside the engine)."""
        return self.tables[self.row(frame)]
