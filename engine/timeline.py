"""Time as a dimension of a session: the op tape, checkpoints and an event index.

The engine is deterministic: a run's specification and an op index fix every
bit of state in every mode. A session with a ``Timeline`` can therefore go to
any op it has run (or any op ahead of it) exactly: it restores the nearest
checkpoint at or below the op and replays the ops from there, in batch.

* **Tape**: every op the session has taken from its workload, in blocks of
  ``TAPE_BLOCK`` ops, zlib-compressed once full (about 5 bytes an op on
  kcompile against 24 raw), so replay never asks the workload again.
* **Checkpoints**: the whole state of every machine (``Machine`` pickled; the
  MMU's cache array stored as its difference from an empty one, see
  ``mmu.MMU.__getstate__``) plus the session's own cursor. Three kinds:
  *coarse*, at multiples of ``COARSE`` ops, compressed and kept for the
  whole run (a jump replays at most ``COARSE`` ops); *fine*, at every other
  multiple of ``FINE`` the session passes, uncompressed (taken while running
  flat out: no time spent compressing), kept while among the ``FINE_KEPT``
  nearest the op last sought or run to (the anchor); and *near*: a seek to
  op t leaves one at every other multiple of ``NEAR`` in the ``NEAR_SPAN``
  ops below t, compressed, kept while t is the op sought last (the aim: a
  seek's own steps on the way keep it), so going back one op after another replays fewer than
  ``NEAR`` ops (once in ``NEAR_SPAN`` ops gone back, up to ``FINE``); and
  *mid*: a seek that replays more than ``HALVE_MIN`` ops to its aim from a
  checkpoint less than ``NEAR`` below it leaves one half-way, kept while
  within ``NEAR`` below the aim, so the next op gone back replays half as
  far (where every op faults, 256 ops take 0.1-0.2 s to replay); a jump
  leaves mid ones at ``LADDER`` ops below its target for the first ops
  gone back. Past
  ``max_bytes`` the coarse ones are thinned, every other one dropped, so the
  memory stays bounded on any run and a jump on a very long one replays
  further.
* **Event index**: at every multiple of ``BUCKET`` ops, each machine's
  running totals of the counters a search looks for (never reset by a
  warm-up). A search reads which buckets hold an event of its kind, and
  scans op by op only inside those.

Memory bound (documented in the README): tape ≈ 5-24 bytes an op, index
``BUCKET``-th of ``8 * len(INDEX_COLUMNS) * modes`` bytes an op, checkpoints at
most ``max_bytes`` (default 40 MiB) for the coarse ones, plus ``FINE_KEPT``
uncompressed and ``NEAR_SPAN // NEAR`` compressed ones (about 4.7 MB and
1 MB each on a 1 M-op kcompile run).
"""

from __future__ import annotations

import gc
import pickle
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..workloads import ops as O
from .counters import EXIT_REASONS, INDEX

TAPE_BLOCK = 1 << 14
COARSE = 1 << 14
FINE = 4096
FINE_KEPT = 2
NEAR = 256
NEAR_SPAN = 1024
HALVE_MIN = 32
LADDER = (16, 48, 112)  # a jump to op t leaves mid checkpoints at t - these too: the first ops gone back replay few
BUCKET = 1024
MAX_BYTES = 40 << 20

# What the event index keeps per machine: counters, and the software events the machine noted.
COUNTER_COLUMNS = ("tlb_misses", "walks", "assist_walks", "guest_pf", "exits") + tuple("exit_" + r for r in EXIT_REASONS)
NOTE_COLUMNS = ("ShadowSync", "Flush", "OsOp")
# completed walks of any sort (a D-bit assist too): the ops whose walk grid the UI can show
INDEX_COLUMNS = COUNTER_COLUMNS + NOTE_COLUMNS + ("walks_any",)
COLUMN = {name: i for i, name in enumerate(INDEX_COLUMNS)}
_COUNTER_SLOTS = np.array([INDEX[n] for n in COUNTER_COLUMNS])

OS_KINDS = {"mmap": O.MMAP, "munmap": O.MUNMAP, "fork": O.FORK, "exec": O.EXEC, "exit": O.EXIT, "switch": O.SWITCH}


class Tape:
    """The ops a session has taken, in order; full blocks compressed."""

    def __init__(self) -> None:
        self._blocks: list[bytes] = []
        self._block_accesses: list[int] = []  # ACCESS ops in each full block
        self._open = O.empty(TAPE_BLOCK)
        self._n_open = 0
        self._cache: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self._blocks) * TAPE_BLOCK + self._n_open

    def append(self, ops: np.ndarray) -> None:
        while len(ops):
            take = min(len(ops), TAPE_BLOCK - self._n_open)
            self._open[self._n_open : self._n_open + take] = ops[:take]
            self._n_open += take
            ops = ops[take:]
            if self._n_open == TAPE_BLOCK:
                self._blocks.append(zlib.compress(self._open.tobytes(), 1))
                self._block_accesses.append(int(np.count_nonzero(self._open["kind"] == O.ACCESS)))
                self._n_open = 0

    def _block(self, i: int) -> np.ndarray:
        if i == len(self._blocks):
            return self._open[: self._n_open]
        if self._cache is None or self._cache[0] != i:
            self._cache = (i, np.frombuffer(zlib.decompress(self._blocks[i]), dtype=O.OP_DTYPE))
        return self._cache[1]

    def slice(self, start: int, stop: int) -> np.ndarray:
        """Ops [start, stop) (stop clipped to the tape's end)."""
        stop = min(stop, len(self))
        parts = []
        while start < stop:
            i, offset = divmod(start, TAPE_BLOCK)
            block = self._block(i)
            part = block[offset : offset + stop - start]
            parts.append(part)
            start += len(part)
        if len(parts) == 1:
            return parts[0].copy()
        return np.concatenate(parts) if parts else O.empty(0)

    def accesses_before(self, op: int) -> int:
        """How many of the first `op` ops are ACCESS ops."""
        full, offset = divmod(min(op, len(self)), TAPE_BLOCK)
        return sum(self._block_accesses[:full]) + int(np.count_nonzero(self._block(full)[:offset]["kind"] == O.ACCESS))

    @property
    def nbytes(self) -> int:
        return sum(len(b) for b in self._blocks) + self._open.nbytes


_compressor: ThreadPoolExecutor | None = None


def compressing(blob: bytes) -> Future:
    """zlib at level 1 in a thread of its own: zlib lets go of the GIL, so a seek replays on while its
    checkpoints are compressed (~40 ms each on a 1 M-op kcompile run) on the other core."""
    global _compressor
    if _compressor is None:
        _compressor = ThreadPoolExecutor(1, thread_name_prefix="rvi-checkpoints")
    return _compressor.submit(zlib.compress, blob, 1)


class Checkpoint:
    def __init__(self, op: int, blob: bytes, kind: str) -> None:
        self.op = op
        self.kind = kind  # coarse | fine | near | mid (see the module docstring); all but fine ones are compressed
        self._raw: bytes | None = blob  # until compressed: a restore meanwhile uses it rather than wait
        self._blob: bytes | None = None if self.compressed else blob
        self._future = compressing(blob) if self.compressed else None
        if self._future is not None:
            self._future.add_done_callback(self._compressed)

    def _compressed(self, future: Future) -> None:
        if future.exception() is None:
            self._blob = future.result()
            self._raw = None

    @property
    def compressed(self) -> bool:
        return self.kind != "fine"

    @property
    def blob(self) -> bytes:
        """What the checkpoint holds (waits for its compression)."""
        return self._blob if self._blob is not None else self._future.result()

    @property
    def nbytes(self) -> int:
        raw = self._raw
        return len(raw) if raw is not None else len(self._blob)

    def state(self) -> dict:
        raw = self._raw
        blob = raw if raw is not None else zlib.decompress(self._blob)
        gc.disable()  # loads makes ~10^5 objects: no collections of the whole heap on the way (tens of ms each)
        try:
            return pickle.loads(blob)
        finally:
            gc.enable()


class EventIndex:
    """Per machine, running totals of INDEX_COLUMNS at every multiple of BUCKET ops (row 0: op 0), and the
    longest walk of each bucket (the kernel's ST_MAX_WALK, cleared at each bucket's start)."""

    def __init__(self, modes: tuple[str, ...]) -> None:
        self.modes = modes
        self._rows = np.zeros((64, len(modes), len(INDEX_COLUMNS)), dtype=np.int64)
        self._longest = np.zeros((64, len(modes)), dtype=np.int64)
        self.n_rows = 1  # row 0 is all zeros: nothing has happened at op 0

    def add(self, row: np.ndarray, longest: np.ndarray) -> None:
        if self.n_rows == len(self._rows):
            self._rows = np.concatenate([self._rows, np.zeros_like(self._rows)])
            self._longest = np.concatenate([self._longest, np.zeros_like(self._longest)])
        self._rows[self.n_rows] = row
        self._longest[self.n_rows - 1] = longest
        self.n_rows += 1

    def longest_walks(self, mode: str) -> np.ndarray:
        """The most references one completed walk took, in each complete bucket."""
        return self._longest[: self.n_rows - 1, self.modes.index(mode)]

    def deltas(self, mode: str, column: str) -> np.ndarray:
        """How much the column grew in each complete bucket."""
        col = self._rows[: self.n_rows, self.modes.index(mode), COLUMN[column]]
        return np.diff(col)

    @property
    def nbytes(self) -> int:
        return self._rows.nbytes + self._longest.nbytes


@dataclass(frozen=True)
class EventKind:
    """A kind of event a search looks for, in one mode's machine."""

    name: str  # tlb-miss | walk | guest-pf | npf | exit | sync | flush | os
    min_refs: int = 1  # walk: at least this many references (0: any completed walk, an assist too)
    reason: str = ""  # exit: one reason, or any
    os_op: str = ""  # os: one kind of op, or any

    NAMES = ("tlb-miss", "walk", "guest-pf", "npf", "exit", "sync", "flush", "os")

    def label(self) -> str:
        if self.name == "walk":
            return f"walk ≥{self.min_refs} refs"
        if self.name == "exit":
            return f"VM exit {self.reason}" if self.reason else "VM exit"
        if self.name == "os":
            return f"OS {self.os_op}" if self.os_op else "OS op"
        return {"tlb-miss": "TLB miss", "guest-pf": "guest page fault", "npf": "nested page fault",
                "sync": "shadow sync", "flush": "TLB flush"}[self.name]

    def mode(self, viewed: str) -> str:
        """The machine the search watches: nested page faults happen only under nested paging, shadow-sync
        actions only under shadow paging, the rest in the mode on screen."""
        return {"npf": "nested", "sync": "shadow"}.get(self.name, viewed)

    def column(self) -> str:
        return {"tlb-miss": "tlb_misses", "walk": "walks_any", "guest-pf": "guest_pf", "npf": "exit_npf",
                "exit": "exit_" + self.reason if self.reason else "exits", "sync": "ShadowSync",
                "flush": "Flush", "os": "OsOp"}[self.name]

    @property
    def by_length(self) -> bool:
        """A walk of at least min_refs references: found by the kernel's longest-walk register."""
        return self.name == "walk" and self.min_refs > 0

    def matches_op(self, op_row) -> bool:
        """For OS kinds, whether the op itself is one (no machine needed)."""
        return bool(self.matching_ops(op_row["kind"]))

    def matching_ops(self, kinds: np.ndarray) -> np.ndarray:
        """For OS kinds: which of these ops (their ``kind`` field) are one."""
        return kinds == OS_KINDS[self.os_op] if self.os_op else kinds != O.ACCESS

    def check(self) -> None:
        from .errors import EngineError

        if self.name not in self.NAMES:
            raise EngineError(f"unknown event kind {self.name!r} (known: {', '.join(self.NAMES)})")
        if self.name == "exit" and self.reason and self.reason not in EXIT_REASONS:
            raise EngineError(f"unknown exit reason {self.reason!r} (known: {', '.join(EXIT_REASONS)})")
        if self.name == "os" and self.os_op and self.os_op not in OS_KINDS:
            raise EngineError(f"unknown OS op {self.os_op!r} (known: {', '.join(OS_KINDS)})")
        if self.name == "walk" and self.min_refs < 1:
            raise EngineError(f"a walk has at least 1 reference, not {self.min_refs}")


def machine_totals(machine) -> np.ndarray:
    """One machine's running totals of INDEX_COLUMNS (counters plus what a warm-up reset took away)."""
    counts = machine.cnt[_COUNTER_SLOTS] + machine.cnt_before_reset[_COUNTER_SLOTS]
    notes = [machine.noted.get(n, 0) for n in NOTE_COLUMNS]
    walks_any = counts[COLUMN["walks"]] + counts[COLUMN["assist_walks"]]
    return np.concatenate([counts, np.array(notes + [walks_any], dtype=np.int64)])


class Timeline:
    """The tape, checkpoints and index of one session (see the module docstring)."""

    def __init__(self, modes: tuple[str, ...], max_bytes: int = MAX_BYTES) -> None:
        self.tape = Tape()
        self.index = EventIndex(modes)
        self.checkpoints: dict[int, Checkpoint] = {}
        self.max_bytes = max_bytes
        self.coarse = COARSE  # doubles when thinning
        self.anchor = 0  # the op the fine and near checkpoints are kept around
        self.aim = 0  # the op last sought: near checkpoints are taken and kept in the NEAR_SPAN ops below it
        self.ladder: set[int] = set()  # ops a jump to the aim wants mid checkpoints at (LADDER)

    # --- checkpoints --------------------------------------------------------------------------
    def in_near_span(self, op: int) -> bool:
        return self.aim - NEAR_SPAN < op <= self.aim

    def wants_checkpoint(self, op: int) -> bool:
        wanted = op % FINE == 0 or (op % NEAR == 0 and self.in_near_span(op)) or op in self.ladder
        return wanted and op not in self.checkpoints

    def take(self, op: int, state: dict) -> None:
        blob = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
        kind = "coarse" if op % self.coarse == 0 else "fine" if op % FINE == 0 else "near" if op % NEAR == 0 else "mid"
        self.checkpoints[op] = Checkpoint(op, blob, kind)
        self.move_anchor(op)

    def nearest(self, op: int) -> Checkpoint | None:
        """The checkpoint at the highest op at or below op."""
        best = None
        for k in self.checkpoints:
            if k <= op and (best is None or k > best):
                best = k
        return None if best is None else self.checkpoints[best]

    def move_anchor(self, op: int) -> None:
        self.anchor = op
        self._prune()

    def _prune(self) -> None:
        fine = sorted((k for k, c in self.checkpoints.items() if c.kind == "fine" and not self.in_near_span(k)),
                      key=lambda k: (k > self.anchor, abs(self.anchor - k)))
        gone = [k for k, c in self.checkpoints.items() if (c.kind == "near" and not self.in_near_span(k))
                or (c.kind == "mid" and not self.aim - NEAR < k <= self.aim)]
        for k in fine[FINE_KEPT:] + gone:
            del self.checkpoints[k]
        while self.coarse_bytes() > self.max_bytes and self.coarse < (1 << 40):
            self.coarse *= 2  # thin: keep every other coarse checkpoint (op 0 always stays)
            for k in [k for k, c in self.checkpoints.items() if c.kind == "coarse" and k % self.coarse]:
                del self.checkpoints[k]

    def coarse_bytes(self) -> int:
        return sum(len(c.blob) for c in self.checkpoints.values() if c.kind == "coarse")

    @property
    def nbytes(self) -> int:
        """Memory held for going back: checkpoints (uncompressed while being compressed), tape and index."""
        return sum(c.nbytes for c in self.checkpoints.values()) + self.tape.nbytes + self.index.nbytes
