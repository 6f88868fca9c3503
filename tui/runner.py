"""The engine thread: owns the session, runs it in short slices, answers the UI's pulls.

The UI never touches the session: it queues commands (load, step, run,
pause, speed) and pulls a ``Frame`` at a bounded rate. Every use of the
session, by the thread or by a pull, holds ``lock``; a running slice holds it
for ≲ 30 ms, so a pull (and so a keypress that needs fresh state) never waits
longer than that.

The thread is a plain daemon thread rather than a Textual thread worker: a
load may parse a large trace, and quitting must not wait for that (a worker's
executor thread is joined at exit; a daemon thread is not). On a cold kernel
cache the engine runs interpreted at once and a child process compiles
(``engine/hardware.py``): nothing here waits for numba.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from rvi_tui.engine import config as C
from rvi_tui.engine import heap
from rvi_tui.engine.errors import ConfigError, EngineError
from rvi_tui.engine.report import summarize
from rvi_tui.workloads.count import OpCount
from rvi_tui.workloads.errors import TraceError, WorkloadError

from .viewcache import UNKNOWN, StepRecord, ViewCache
from .walks import HOST_LEAF_LEVEL, WalkView, build_view, costs_of, has_walk, tlb_marks

if TYPE_CHECKING:
    from rvi_tui.engine.session import Session
    from rvi_tui.engine.timeline import EventKind

# The session, the kernels and the workload generators import numba (~0.4 s): this thread imports
# them, so the first frame does not wait (see _engine()).
MODES = ("native", "shadow", "nested")

# Speeds in ops/s; None = flat out. Up to STEP_LIMIT every op is stepped with its events;
# above it ops run in batch (counters only) and one op per slice is stepped as a sample.
SPEEDS: tuple[int | None, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 1_000, 10_000, 100_000, None)
STEP_LIMIT = 200
DEFAULT_SPEED = len(SPEEDS) - 1
SLICE_S = 0.025  # target wall time of a running slice
SUB_S = 0.004  # target wall time of one session.run() inside a slice: about the longest a pull waits
# ... while the kernels run interpreted: a key's pull waits for the sub-batch under way, and interpreted ops
# vary in cost (a fork's table copy), so the sub-batches that overshoot the target do so from a lower base
INTERPRETED_SUB_S = 0.002
MAX_SUB = 256  # ops per session.run(): a burst of faults (~0.2 ms each, in Python) stays ≲ 50 ms
MAX_BATCH = 1 << 16
HISTORY_OPS = 400  # stepped ops kept for the event log (per session)
SAMPLE_STEPS = 8  # at batch speeds, step up to this many ops per slice until one walks
SPARK_LEN = 160  # cycles/access samples kept per mode
SPARK_STEP_ACCESSES = 16  # stepping: one sample per 16 accesses (a single access is all noise); batch: per slice

VIEW_OPS = 40  # after going back or jumping, the ops before the one shown are stepped again for the event log
VIEW_EXTRA = 88  # ... and this many more below them, kept for the ops gone back to next (view cache)
SPARK_EXTRA = 64  # the sparklines' samples are worked out this many further back, for the same reason
TASK_SLICE_S = 0.03  # a seek or search holds the session this long at most, then lets a pull in
TASK_QUIET_S = 0.25  # ... and shows its progress only once it has run this long

WARMING, LOADING, PAUSED, RUNNING, FINISHED, ERROR = "warming", "loading", "paused", "running", "finished", "error"
SEEKING = "seeking"  # going back, jumping or searching: a task runs in slices
USER_ERRORS = (EngineError, ConfigError, TraceError, WorkloadError, OSError)


def add_spark_sample(sparks: dict, cur: dict, base: dict, min_accesses: int) -> bool:
    """Append each mode's cycles/access from counters `base` to `cur`, if min_accesses ran; whether it did."""
    d = {m: {k: v - base.get(m, {}).get(k, 0) for k, v in c.items()} for m, c in cur.items()}
    if not any(v.get("accesses", 0) >= min_accesses for v in d.values()):
        return False
    for mode, summ in summarize(d).items():
        if summ["accesses"] > 0:
            sparks.setdefault(mode, deque(maxlen=SPARK_LEN)).append(summ["cycles_per_access"])
    return True


def speed_label(index: int) -> str:
    s = SPEEDS[index]
    if s is None:
        return "max"
    return f"{s:,}/s" if s < 1000 else f"{s // 1000:,}k/s"


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines a run: the workload and the machine configuration."""

    workload: str | None = "kcompile"
    params: tuple = ()  # (key, value) pairs for make_workload
    trace: str | None = None
    preset: str = C.DEFAULT_PRESET
    sets: tuple[str, ...] = ()
    seed: int = 1
    guest_page: str | None = None
    host_page: str | None = None
    levels: int | None = None
    trace_format: str | None = None  # lackey | text | npy; None = detected from the content
    ifetch: bool = False  # replay a lackey trace's instruction fetches too
    skip_bad_lines: bool = False

    @property
    def label(self) -> str:
        if self.trace:
            return f"trace {self.trace}"
        params = " ".join(f"{k}={v}" for k, v in self.params)
        return f"{self.workload}{' ' + params if params else ''} seed {self.seed}"

    def overrides(self) -> dict:
        o = {}
        if self.guest_page:
            o["guest.page"] = self.guest_page
        if self.host_page:
            o["host.page"] = self.host_page
        if self.levels:
            o["guest.levels"] = int(self.levels)
            o["host.levels"] = int(self.levels)
        return o

    def config(self) -> C.Config:
        return C.load(preset=self.preset, sets=list(self.sets), overrides=self.overrides())

    def make_workload(self, levels: int = 4):
        """The workload; ``levels`` (the config's guest.levels) says which trace addresses are user addresses."""
        from rvi_tui.workloads.registry import make_workload, open_trace

        if self.trace:
            return open_trace(self.trace, self.trace_format, ifetch=self.ifetch, skip_bad_lines=self.skip_bad_lines,
                              levels=levels)
        return make_workload(self.workload, seed=self.seed, **dict(self.params))

    def with_pages(self, guest: str, host: str) -> RunSpec:
        return replace(self, guest_page=guest, host_page=host)

    def describe(self) -> str:
        """The machine settings in one line: preset, page sizes, levels, config overrides."""
        cfg = self.config()
        sets = " ".join(self.sets)
        return (f"preset {self.preset} · guest {cfg['guest.page']} / host {cfg['host.page']} pages · "
                f"{cfg['guest.levels']}-level" + (f" · {sets}" if sets else ""))


@dataclass(frozen=True)
class OpRecord:
    """One stepped op: its events in every mode."""

    seq: int
    op_index: int  # 1-based
    op_text: str
    events: dict  # mode -> list of events
    gap: int = 0  # ops run in batch (no events) just before this one


@dataclass
class Frame:
    """What the UI draws, copied out under the lock."""

    generation: int
    state: str
    message: str
    error: str | None
    spec: RunSpec | None
    ops_done: int = 0
    total_ops: int | None = None
    speed: int = DEFAULT_SPEED
    ops_rate: float | None = None
    counters: dict | None = None
    snapshot: object | None = None  # MachineSnapshot of the viewed mode (None = unchanged / not asked)
    records: list = field(default_factory=list)  # OpRecords newer than the pull's `since`
    last_seq: int = 0
    latest: OpRecord | None = None  # the newest stepped op, if it is also the newest op run
    walk: WalkView | None = None  # last completed walk of the viewed mode
    marks: dict = field(default_factory=dict)  # TLB entries the newest op touched (viewed mode)
    config: dict = field(default_factory=dict)  # facts: guest_page, host_page, glevels, hlevels, preset
    warm_s: float = 0.0  # seconds spent warming up so far
    sparks: dict = field(default_factory=dict)  # mode -> list of recent cycles/access samples
    warmup_ops: int = 0  # the workload's warm-up (e.g. tlbstress initialising its heap): counters reset after it
    warmup_done: bool = False
    kernels: str = ""  # what runs the hardware path: "compiled", or "interpreted, compiling 12 s"
    frontier: int = 0  # how far the run has ever gone (ops); going back keeps it
    history_epoch: int = 0  # changes when the event log's records were made anew (a seek): redraw it whole
    search: object | None = None  # the EventKind n / N look for
    event_buckets: object | None = None  # per index bucket (timeline.BUCKET ops): whether it holds one
    task: str = ""  # what a seek or search is doing ("searching for … op 41,000")
    notice: str | None = None  # how a search or a cancelled seek ended, once


class Runner:
    """Thread-side owner of the session. Public methods are called from the UI thread."""

    def __init__(self, notify: Callable[[str], None] | None = None):
        self.lock = threading.Lock()
        self._notify = notify or (lambda reason: None)
        self._cmds: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._ui_waiting = threading.Event()
        self._snap_time = 0.0
        self._hold_depth = 0
        self.generation = 0
        self.state = WARMING
        self.message = "starting"
        self.error: str | None = None
        self.spec: RunSpec | None = None
        self.session: Session | None = None
        self.config = None
        self.costs: dict = {}
        self.total_ops: int | None = None
        self._length: OpCount | None = None  # counts the loaded workload's ops
        self.speed = DEFAULT_SPEED
        self.view = "nested"  # the viewed mode (sampling prefers ops that walk in it)
        self.warmed = False
        self.warmup_ops = 0
        self.warmup_done = False
        self.warm_started: float | None = None
        self.warm_s = 0.0
        self._seq = 0
        self.records: deque[OpRecord] = deque(maxlen=HISTORY_OPS)
        self.walks: dict[str, WalkView] = {}
        self._run_t0 = 0.0
        self._run_ops0 = 0
        self._batch = 64
        self._sub = 16
        self._rate_samples: deque = deque(maxlen=64)
        self.ops_rate: float | None = None
        self.sparks: dict[str, deque] = {}
        self._spark_base: dict | None = None
        self.on_slice: Callable[[], None] | None = None  # test hook, called (thread side) after each slice
        self.trace_sha256: str | None = None  # of the trace as loaded (session files record it)
        self.search: EventKind | None = None  # what n / N look for
        self.history_epoch = 0
        self._task = None  # a generator: a seek or search in progress, advanced a slice at a time
        self._task_origin = 0
        self._task_started = 0.0
        self._task_label = ""
        self.task_progress = ""
        self._cancel = threading.Event()
        self.task_result: str | None = None  # a search's outcome to tell the user (taken by the UI)
        self._strip_cache: tuple | None = None
        # `walks` holds each mode's last walk up to this op (stepping keeps it so; a batch run does not: None)
        self._walks_exact_to: int | None = 0
        self.view_cache = ViewCache()  # the pieces of the views of ops shown after going back or a jump

    # --- UI side ---------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._main, name="rvi-engine", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        if self._length is not None:
            self._length.close()
        self._cmds.put(("stop",))
        if self._thread is not None:
            self._thread.join(timeout)

    def load(self, spec: RunSpec) -> None:
        self._cmds.put(("load", spec))

    def step(self, n: int = 1) -> None:
        self._cmds.put(("step", n))

    def run(self) -> None:
        self._cmds.put(("run",))

    def pause(self) -> None:
        self._cmds.put(("pause",))

    def seek(self, op: int, relative: bool = False) -> None:
        """Go to op (or op more/fewer than now, relative): the screen is then what a run stepped there shows."""
        self._cancel.clear()
        self._cmds.put(("seek", op, relative))

    def back(self) -> None:
        self.seek(-1, relative=True)

    def find(self, kind: EventKind, forward: bool = True) -> None:
        """Go to the next (or previous) op with an event of kind; a search that finds none stays put."""
        self._cancel.clear()
        self._cmds.put(("find", kind, forward))

    def cancel(self) -> None:
        """Stop a seek or search: back to the op it started from."""
        self._cancel.set()

    def set_search(self, kind: EventKind | None) -> None:
        self.search = kind

    def set_speed(self, index: int) -> None:
        self.speed = max(0, min(len(SPEEDS) - 1, index))
        self._cmds.put(("speed",))

    @property
    def busy(self) -> bool:
        return self.state in (WARMING, LOADING)

    @property
    def seeking(self) -> bool:
        return self.state == SEEKING

    def pull(self, mode: str, since: int = 0, have: tuple | None = None, snapshot_every: float = 0.0) -> Frame:
        """A consistent copy of the state for the viewed mode (takes the lock: ≤ one sub-batch of waiting).

        ``since``: only op records newer than this seq; ``have``: the (generation, ops_done, mode) of the
        snapshot the caller already holds: if unchanged, no new snapshot is taken (``Frame.snapshot`` None).
        ``snapshot_every``: while running, take a new snapshot (TLB contents, table paths: ~2-20 ms with a
        full L2 TLB) at most this often, if the caller holds one of the same mode and session.
        """
        with self.hold():
            if self.state == SEEKING:  # between two slices of the task: never wait long, say how far it got
                if not self.lock.acquire(timeout=TASK_SLICE_S):
                    return self._task_frame()
                try:
                    return self._frame(mode, since, have, snapshot_every)
                finally:
                    self.lock.release()
            with self.lock:
                return self._frame(mode, since, have, snapshot_every)

    @contextlib.contextmanager
    def hold(self):
        """Keep the engine thread from starting a new sub-batch (the UI is pulling or drawing).

        The engine and the UI share the GIL: a redraw that competes with the engine takes about twice its
        CPU time. Held for a pull plus a redraw (~10-30 ms) the engine loses the same time, the key less.
        """
        self.ui_busy()
        try:
            yield
        finally:
            self.ui_done()

    def ui_busy(self) -> None:
        """The engine starts no new sub-batch until as many ``ui_done`` calls (UI thread only: nested holds, a
        redraw's inside a key's)."""
        self._hold_depth += 1
        self._ui_waiting.set()

    def ui_done(self) -> None:
        self._hold_depth -= 1
        if not self._hold_depth:
            self._ui_waiting.clear()

    def _task_frame(self) -> Frame:
        return Frame(self.generation, self.state, self.message, self.error, self.spec, speed=self.speed,
                     total_ops=self.total_ops, last_seq=self._seq, warmup_ops=self.warmup_ops,
                     warmup_done=self.warmup_done, kernels=self._kernels(), task=self.task_progress,
                     search=self.search, history_epoch=self.history_epoch)

    def _frame(self, mode: str, since: int, have: tuple | None, snapshot_every: float = 0.0) -> Frame:
        warm = self.warm_s
        if self.state == WARMING and self.warm_started is not None:
            warm = time.perf_counter() - self.warm_started
        f = Frame(self.generation, self.state, self.message, self.error, self.spec, speed=self.speed,
                  total_ops=self.total_ops, warm_s=warm, last_seq=self._seq, warmup_ops=self.warmup_ops,
                  warmup_done=self.warmup_done, kernels=self._kernels())
        if self.config is not None:
            f.config = {"guest_page": self.config["guest.page"], "host_page": self.config["host.page"],
                        "glevels": self.config["guest.levels"], "hlevels": self.config["host.levels"],
                        "preset": self.config.preset, "pcid": self.config["guest.pcid"]}
        s = self.session
        if s is None:
            return f
        f.ops_done = s.ops_done
        f.frontier = s.frontier
        f.history_epoch = self.history_epoch
        f.search = self.search
        f.task = self.task_progress if self.state == SEEKING else ""
        if self._task is None and self.task_result:
            f.notice, self.task_result = self.task_result, None
        if self.state == SEEKING:  # the session is somewhere in the task: show the last op settled
            f.ops_done = self._task_origin
            return f
        f.event_buckets = self._event_buckets(mode)
        f.ops_rate = self.ops_rate if self.state == RUNNING else None
        f.counters = s.counters()
        key = (self.generation, s.ops_done, mode)
        fresh_enough = (snapshot_every > 0 and self.state == RUNNING and have is not None and have[0] == key[0]
                        and have[2] == mode and time.perf_counter() - self._snap_time < snapshot_every)
        if mode in s.modes and have != key and not fresh_enough:
            f.snapshot = s.snapshot(mode)
            self._snap_time = time.perf_counter()
        f.records = [r for r in self.records if r.seq > since]
        if self.records and self.records[-1].op_index == s.ops_done:
            f.latest = self.records[-1]
            f.marks = tlb_marks(f.latest.events.get(mode, ()))
        f.walk = self.walks.get(mode)
        f.sparks = {m: list(d) for m, d in self.sparks.items()}
        return f

    def _event_buckets(self, mode: str):
        """For the timeline strip: which index buckets hold an event of the search's kind (lock held)."""
        from rvi_tui.engine.timeline import BUCKET, OS_KINDS

        kind, s = self.search, self.session
        if kind is None or s is None or s.timeline is None:
            return None
        watched = kind.mode(mode)
        if watched not in s.modes:
            return None
        if kind.name == "os" and kind.os_op:  # the index counts OS ops of any sort: look at the tape, once a bucket
            key = (self.generation, kind)
            have = self._strip_cache[1] if self._strip_cache and self._strip_cache[0] == key else np.zeros(0, bool)
            n = s.timeline.index.n_rows - 1
            if len(have) < n:
                ops = s.ops(len(have) * BUCKET, n * BUCKET)
                hits = ops["kind"] == OS_KINDS[kind.os_op]
                have = np.concatenate([have, hits.reshape(-1, BUCKET).any(axis=1)])
                self._strip_cache = (key, have)
            return have.copy()
        return s.event_buckets(kind, watched)

    def _kernels(self) -> str:
        if not self.warmed:
            return ""
        from rvi_tui.engine import hardware

        return hardware.status().describe()

    @staticmethod
    def _interpreted_while_compiling() -> bool:
        """The kernels run as Python until the compiler child is done (a failed compile leaves them so for good)."""
        from rvi_tui.engine import hardware

        status = hardware.status()
        return status.compiling and not status.compiled

    # --- thread side -----------------------------------------------------------------------------
    def _post(self, reason: str) -> None:
        try:
            self._notify(reason)
        except Exception:  # the app may be closing
            pass

    def _main(self) -> None:
        while True:
            wait = self._wait_time()
            try:
                cmd = self._cmds.get(timeout=wait) if wait > 0 else self._cmds.get_nowait()
            except queue.Empty:
                cmd = None
            if cmd is not None and cmd[0] == "stop":
                heap.defer_full(False)
                return
            try:
                if self.warmed:
                    heap.defer_full(self.state == RUNNING)
                if cmd is None and self.warmed and self.state != RUNNING:
                    self._adopt_compiled()
                if cmd is not None:
                    self._handle(cmd)
                if self._task is not None:
                    self._task_slice()
                elif self.state == RUNNING:
                    self._slice()
                    if not self._ui_waiting.is_set() and not self._interpreted_while_compiling():
                        heap.collect_full_if_due()
            except Exception as e:  # anything the engine raises ends the run, never the app
                self._fail(e)

    def _adopt_compiled(self) -> None:
        """While idle, take up compiled kernels as soon as the compiler child has made them (a run takes them up
        at its next batch anyway), so that the status line says so."""
        from rvi_tui.engine import hardware

        before = hardware.status()
        if before.compiling:
            with self.lock:
                hardware.start()
            if hardware.status().describe().split(",")[0] != before.describe().split(",")[0]:
                self._post("kernels")

    def _wait_time(self) -> float:
        if self._task is not None:
            return 0.0
        if self.state != RUNNING:
            return 0.1
        speed = SPEEDS[self.speed]
        if speed is None:
            return 0.0
        due_at = self._run_t0 + (self._ran_since_start() + 1) / speed
        return max(0.0, min(0.1, due_at - time.perf_counter()))

    def _ran_since_start(self) -> int:
        return self.session.ops_done - self._run_ops0 if self.session else 0

    def _handle(self, cmd) -> None:
        kind = cmd[0]
        if kind == "load":
            self._task = None
            self._load(cmd[1])
        elif kind in ("seek", "find"):
            if self.session is None or self.state in (WARMING, LOADING, ERROR):
                return
            if self._task is None:
                self._task_origin = self.session.ops_done
                self._resume = self.state
            self.state = SEEKING
            if self._resume == RUNNING:
                self._resume = PAUSED
            if kind == "seek":
                target = self._task_origin + cmd[1] if cmd[2] else cmd[1]
                self._start_task(self._view_task(max(0, target)), f"going to op {max(0, target):,}")
            else:
                k = cmd[1]
                self._start_task(self._find_task(k, cmd[2]), f"searching for the {'next' if cmd[2] else 'previous'} "
                                 f"{k.label()}")
        elif kind == "step":
            if self.state == PAUSED:
                with self.lock:
                    for _ in range(cmd[1]):
                        if not self._step_one(0):
                            break
                        self._spark_sample(SPARK_STEP_ACCESSES)
                self._post("step")
        elif kind == "run":
            if self.state == PAUSED:
                self.state = RUNNING
                self._restart_pacing()
                self._post("state")
        elif kind == "pause":
            if self.state == RUNNING:
                self.state = PAUSED
                self.ops_rate = None
                self._post("state")
        elif kind == "speed":
            self._restart_pacing()
            self._post("state")

    def _restart_pacing(self) -> None:
        self._run_t0 = time.perf_counter()
        self._run_ops0 = self.session.ops_done if self.session else 0
        self._rate_samples.clear()
        self._rate_samples.append((self._run_t0, self._run_ops0))

    def _load(self, spec: RunSpec) -> None:
        if self._length is not None:
            self._length.close()  # the run it counted is being replaced
        with self.lock:
            self.generation += 1
            self.session = None
            self.spec = spec
            self.error = None
            self.records.clear()
            self.walks.clear()
            self._walks_exact_to = 0
            self.view_cache = ViewCache()
            self.sparks = {}
            self._spark_base = None
            self.total_ops = None
            self.ops_rate = None
            self.warmup_ops = 0  # the old run's warm-up, and its end, are not the new run's
            self.warmup_done = False
        if not self.warmed:
            self.state = WARMING
            self.message = "loading the simulator…"
            self.warm_started = time.perf_counter()
            self._post("state")
            # here, not at import: the first frame must not wait for numba. On a cold cache this starts the
            # compiler in a child process and runs the kernels' own source interpreted until it is done
            from rvi_tui.engine import hardware

            hardware.start()
            self.warm_s = time.perf_counter() - self.warm_started
            self.warm_started = None
            self.warmed = True
        self.state = LOADING
        self.message = f"loading {spec.label}…"
        self._post("state")
        config = spec.config()
        workload = spec.make_workload(config["guest.levels"])
        sha = None
        if spec.trace:
            from rvi_tui.workloads.traces import file_sha256

            sha = file_sha256(spec.trace)
        chunks = iter(workload.chunks())
        first = next(chunks, None)  # parses/generates the first chunk here, not on the first step
        stream = itertools.chain([first], chunks) if first is not None else iter(())
        from rvi_tui.engine.session import Session

        session = Session(stream, config, modes=MODES, warmup_ops=workload.warmup_ops, history=True)
        heap.settle()  # the app, numba and the new run are all here: keep them out of later full collections
        with self.lock:
            self.trace_sha256 = sha
            self.history_epoch += 1
            self.warmup_ops = workload.warmup_ops
            self.warmup_done = False
            self.config = config
            self.costs = costs_of(config)
            self.session = session
            self._spark_base = session.counters()
            self.state = PAUSED
            self.message = ""
        self._post("ready")
        gen = self.generation
        self._length = OpCount(workload, on_count=lambda n: self._counted(n, gen))
        self._length.start()

    def _counted(self, n: int, gen: int) -> None:
        if gen == self.generation:
            self.total_ops = n
            self._post("total")

    def _step_one(self, gap: int) -> bool:
        """Step one op (lock held); False at the end of the stream."""
        s = self.session
        events = s.step()
        if events is None:
            self._finish()
            return False
        self._seq += 1
        rec, views = self._record(events, self._seq, gap)
        self.records.append(rec)
        self.walks.update(views)
        if self._walks_exact_to == s.ops_done - 1:
            self._walks_exact_to = s.ops_done
        self._end_warmup_if_due()
        return True

    def _record(self, events: dict, seq: int, gap: int = 0) -> tuple[OpRecord, dict]:
        """The record of the op the session just stepped, and the walk grid of each mode that walked."""
        from rvi_tui.workloads import ops as O

        s = self.session
        op = s.last_op[0]
        op_text = O.describe(op)
        vaddr = int(op["addr"]) if int(op["kind"]) == O.ACCESS else 0
        views = {}
        glevels = self.config["guest.levels"]
        hlevels = self.config["host.levels"]
        hleaf = HOST_LEAF_LEVEL[self.config["host.page"]]
        for mode, evs in events.items():
            if has_walk(evs):
                view = build_view(mode, evs, s.ops_done, op_text, glevels, hlevels, self.costs, vaddr, hleaf)
                if view is not None:
                    views[mode] = view
        return OpRecord(seq, s.ops_done, op_text, events, gap), views

    def _warmup_left(self) -> int | None:
        """Ops until the warm-up ends, or None when there is none still to run."""
        if not self.warmup_ops or self.session.warmup_done:
            return None
        return self.warmup_ops - self.session.ops_done

    def _end_warmup_if_due(self) -> None:
        """At the end of the warm-up the session forgot the counts so far, as `rvi-tui report` and `study` do
        (the counters then show the steady state, not the first-touch faults before it): so do the sparklines."""
        if self.session.warmup_done and not self.warmup_done:
            self._spark_base = self.session.counters()
            self.sparks = {}
            self.warmup_done = True
            self._post("warmup")

    def _spark_sample(self, min_accesses: int = 1) -> None:
        """Append each mode's cycles/access since the last sample (lock held), once min_accesses ran."""
        cur = self.session.counters()
        if add_spark_sample(self.sparks, cur, self._spark_base or {}, min_accesses):
            self._spark_base = cur

    def _finish(self) -> None:
        self.state = FINISHED
        self.ops_rate = None
        if self.session is not None:
            self.total_ops = self.session.ops_done
        self.message = "end of the workload: r restarts it, w picks another"

    def _slice(self) -> None:
        speed = SPEEDS[self.speed]
        if self._ui_waiting.is_set():  # let a waiting pull (and its redraw) go first: Lock is not fair
            deadline = time.perf_counter() + 0.1
            while self._ui_waiting.is_set() and time.perf_counter() < deadline:
                time.sleep(0.0005)
        t0 = time.perf_counter()
        s = self.session
        if speed is not None and speed <= STEP_LIMIT:
            due = int((t0 - self._run_t0) * speed) - self._ran_since_start()
            if due <= 0:
                return
            due = min(due, max(1, speed // 10))  # after a stall, do not burst
            with self.lock:
                for _ in range(due):
                    if not self._step_one(0):
                        break
                    self._spark_sample(SPARK_STEP_ACCESSES)
                    if time.perf_counter() - t0 > SLICE_S:
                        break
        else:
            n = self._batch
            if speed is not None:
                allowed = int((t0 - self._run_t0 + SLICE_S) * speed) - self._ran_since_start()
                if allowed <= 0:
                    time.sleep(min(0.02, 1 / speed))
                    return
                n = min(n, allowed)
            sub_s = INTERPRETED_SUB_S if self._interpreted_while_compiling() else SUB_S
            with self.lock:
                before = s.ops_done
                want = max(n - 1, 0)
                ended = False
                while want > 0:  # sub-batches of ~SUB_S, so a waiting pull gets the lock soon
                    k = min(want, self._sub)
                    left = self._warmup_left()
                    if left is not None:  # stop at the end of the warm-up, to reset the counters there
                        k = min(k, max(1, left))
                    ts = time.perf_counter()
                    ran = s.run(k)
                    self._walks_exact_to = None
                    self._end_warmup_if_due()
                    dt = time.perf_counter() - ts
                    if ran and dt > 0:
                        self._sub = max(1, min(MAX_SUB, self._sub * 2, int(ran * sub_s / dt)))
                    want -= ran
                    if ran < k:
                        ended = True
                        break
                    if self._ui_waiting.is_set() or time.perf_counter() - t0 > SLICE_S:
                        break
                if ended:
                    self._finish()
                else:
                    gap = ran
                    for _ in range(SAMPLE_STEPS):
                        if not self._step_one(gap):
                            break
                        gap = 0
                        if has_walk(self.records[-1].events.get(self.view, ())) or self._ui_waiting.is_set():
                            break  # a sample is a nicety: a waiting key or redraw comes first
                self._spark_sample()
                done = s.ops_done - before
            dt = time.perf_counter() - t0
            if done > 0 and dt > 0:
                target = int(done * SLICE_S / dt)  # shrink at once after a slow slice, grow by doubling
                self._batch = max(2, min(MAX_BATCH, self._batch * 2, target))
        now = time.perf_counter()
        self._rate_samples.append((now, s.ops_done))
        while len(self._rate_samples) > 2 and now - self._rate_samples[0][0] > 1.0:
            self._rate_samples.popleft()
        t_old, n_old = self._rate_samples[0]
        if now - t_old > 0.05:
            self.ops_rate = (s.ops_done - n_old) / (now - t_old)
        if self.state == FINISHED:
            self._post("state")
        if self.on_slice is not None:
            self.on_slice()

    # --- going back, jumping, searching (tasks: generators advanced a slice at a time) ----------------
    def _start_task(self, task, label: str) -> None:
        """A task that ends within TASK_QUIET_S is drawn once, at its end: a redraw of the progress before
        it would only delay that one (the UI redraws at most MAX_HZ times a second) and compete with it."""
        self._task = task
        self._task_label = label
        self.task_progress = label + "…"
        self.ops_rate = None
        self._task_started = time.perf_counter()

    def _task_slice(self) -> None:
        """Advance the task for up to TASK_SLICE_S with the session held; on Esc, go back where it started."""
        if self._cancel.is_set():
            self._cancel.clear()
            self._task.close()
            origin = self._task_origin
            self.task_result = f"cancelled: back at op {origin:,}"
            self._task = self._settle(origin)
            self._task_label = "going back"
        t0 = time.perf_counter()
        with self.lock:
            try:
                while time.perf_counter() - t0 < TASK_SLICE_S and not self._cancel.is_set():
                    progress = next(self._task)
                    if progress is not None:
                        self.task_progress = f"{self._task_label}… op {progress:,} · esc cancels"
            except StopIteration:
                self._task = None
                s = self.session
                if s.at_end:
                    self._finish()
                else:
                    self.state = PAUSED
                    self.message = ""
                self._task_origin = s.ops_done
        if self._task is None:
            self._post("state")
        elif time.perf_counter() - self._task_started > TASK_QUIET_S:
            self._post("task")

    def _settle(self, op: int):
        """Put the engine back at op without touching the view's history (it is that op's already)."""
        yield from self.session.seeking(op)

    def _find_task(self, kind: EventKind, forward: bool):
        s = self.session
        origin = s.ops_done
        found = yield from s.find(kind, kind.mode(self.view), forward)
        if found is None:
            where = "after" if forward else "before"
            end = " (searched to the end of the run)" if forward and s.finished else ""
            self.task_result = f"no {kind.label()} {where} op {origin:,}{end}: stayed at op {origin:,}"
            return
        self.task_result = f"{kind.label()} at op {found:,}"
        yield from self._view_task(found)

    def _view_task(self, target: int):
        """Go to op `target` with the screen a run stepped there from its start shows: the engine's state, the
        last VIEW_OPS ops stepped again for the event log and the TLB marks, each mode's last walk grid, and the
        sparklines' samples (one per 16 accesses while stepping: SPARK_STEP_ACCESSES) counted from the run's
        start or the warm-up's end, as a stepped run counts them. What is not in the view cache yet is worked out
        by stepping and running the session again from below it, with VIEW_EXTRA ops and SPARK_EXTRA samples
        more than needed: going back one op after another then finds the next ops' pieces held."""
        s, cache = self.session, self.view_cache
        if target > s.frontier:  # ahead of what has run: run there first, to learn where the stream ends
            yield from s.seeking(target)
        k = min(target, s.frontier)
        reset = self.warmup_ops if self.warmup_ops and k >= self.warmup_ops else 0
        points, base_at = self._spark_points(reset, k, SPARK_LEN)
        wanted = [base_at, *points]
        missing = set()
        if any(p not in cache.counters for p in wanted):
            more, more_base = self._spark_points(reset, k, SPARK_LEN + SPARK_EXTRA)
            missing = {p for p in (more_base, *more) if p not in cache.counters}
        rec_from = max(0, k - VIEW_OPS)
        stretch = cache.to_step(rec_from, k, VIEW_EXTRA)
        a, b = stretch if stretch is not None else (k, k)
        yield from s.seeking(min([a, k, *missing]), aim=k)
        stepped: list[StepRecord] = []
        while True:
            if s.ops_done in missing:
                cache.counters[s.ops_done] = s.counters()
            if s.ops_done >= k:
                break
            if a <= s.ops_done < b:
                events = s.step()
                rec, views = self._record(events, 0)
                stepped.append(StepRecord(s.ops_done, rec.op_text, events, views))
            else:
                s.run(min([p for p in missing if p > s.ops_done] + ([a] if s.ops_done < a else []) + [k])
                      - s.ops_done)
            yield None
        if stepped:
            cache.add_steps(a, stepped)
        cache.keep_counters(set(wanted))
        walks = {}
        for mode in s.modes:
            view = cache.last_walk(mode, k) if k > cache.lo else UNKNOWN
            if view is UNKNOWN and cache.lo == 0:
                view = None
            if view is UNKNOWN:  # no walk in the stretch held: the last one before it
                old = self.walks.get(mode)
                if self._walks_exact_to is not None and self._walks_exact_to >= cache.lo and (
                        old is None or old.op_index <= cache.lo):
                    view = old  # the last walk up to a later op, and none since: the last up to lo too
                else:
                    view = yield from self._last_walk(mode, cache.lo, k)
                cache.walk_at_lo[mode] = view
            if view is not None:
                walks[mode] = view
        if s.ops_done != k:
            yield from s.seeking(k)
        sparks: dict = {}
        base = cache.counters[base_at]
        for p in points:
            add_spark_sample(sparks, cache.counters[p], base, SPARK_STEP_ACCESSES)
            base = cache.counters[p]
        seq = self._seq
        records = []
        for r in cache.steps[rec_from - cache.lo : k - cache.lo]:
            seq += 1
            records.append(OpRecord(seq, r.op_index, r.op_text, r.events))
        self.records = deque(records, maxlen=HISTORY_OPS)
        self.walks = walks
        self.sparks = sparks
        self._spark_base = base
        self._seq = seq
        self._walks_exact_to = k
        self.history_epoch += 1
        self.warmup_done = s.warmup_done

    def _spark_points(self, reset: int, k: int, n: int) -> tuple[list[int], int]:
        """The ops after which a run stepped from `reset` to op k took its last `n` spark samples (every
        SPARK_STEP_ACCESSES-th access), and the op its first one counts from."""
        s, every = self.session, SPARK_STEP_ACCESSES
        span = (n + 1) * every * 2
        while True:
            lo = max(reset, k - span)
            before = s.timeline.tape.accesses_before(lo) - s.timeline.tape.accesses_before(reset)
            at = np.flatnonzero(s.ops(lo, k)["kind"] == 0)  # ACCESS ops, by position from lo
            numbers = before + 1 + np.arange(len(at))
            points = (lo + 1 + at[numbers % every == 0]).tolist()
            if len(points) > n or lo == reset:
                break
            span *= 2
        if len(points) > n:
            return points[-n:], points[-n - 1]
        return points, reset

    def _last_walk(self, mode: str, before: int, shown: int):
        """The walk grid of mode's last op before op `before + 1` that completed a walk (None if there is none);
        the checkpoints close below op `shown` stay."""
        from rvi_tui.engine.timeline import EventKind

        s = self.session
        yield from s.seeking(before + 1, aim=shown)
        found = yield from s.find(EventKind("walk", min_refs=0), mode, forward=False)
        if found is None:
            return None
        yield from s.seeking(found - 1, aim=shown)
        rec, views = self._record(s.step(), 0)
        return views.get(mode)

    def _fail(self, e: BaseException) -> None:
        if isinstance(e, USER_ERRORS):
            what = {ConfigError: "configuration error", TraceError: "trace error", WorkloadError: "workload error",
                    EngineError: "engine error"}
            kind = next((v for k, v in what.items() if isinstance(e, k)), "error")
            text = f"{kind}: {e}"
        else:
            tb = traceback.format_exception(type(e), e, e.__traceback__)
            text = f"internal error ({type(e).__name__}: {e}); this is a bug. Last frame: {tb[-2].strip().splitlines()[0]}"
        with self.lock:
            self.state = ERROR
            self.error = text
            self.ops_rate = None
            self.message = ""
        self._post("error")
