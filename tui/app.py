"""rvi-tui's live terminal UI: three machines in lockstep, one of them on screen.

The engine runs in a background thread (``runner.Runner``); this module only
queues commands to it and pulls ``Frame`` copies of its state, at most
``MAX_HZ`` times a second, rendering each inside ``batch_update()``.

    python -m rvi_tui.tui.app            # or `rvi-tui` with no subcommand
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from dataclasses import replace

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.events import Event, Key, Resize
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from rvi_tui.engine import config as C
from rvi_tui.engine.errors import ConfigError
from rvi_tui.engine.report import summarize
from rvi_tui.workloads.bytestream import replay_problem
from rvi_tui.workloads.errors import WorkloadError

from .eventlog import LogLine, OpLinesMemo
from .explain import counter_help
from .export import counters_document, export_names, write_export
from .messages import EngineUpdate
from .offered import offered_files
from .runner import (ERROR, FINISHED, LOADING, MODES, PAUSED, RUNNING, SEEKING, SPEEDS, STEP_LIMIT, WARMING, Frame,
                     Runner, RunSpec, speed_label)
from .screens import ConfirmScreen, EventFilterScreen, HelpScreen, WorkloadPicker
from .stats import CounterHistory
from .walks import HOST_LEAF_LEVEL, tlb_summary
from .travel import JumpScreen, SearchKindScreen
from .widgets import (CountersPane, ErrorBar, EventLog, GuestTablePane, SecondTablePane, StatusBar, TimelineStrip,
                      TlbPane, WalkGrid)
from .widgets.counters import CountersBody
from .widgets.footer import KeyFooter
from .widgets.status import Status
from .widgets.tlb import TlbRows

DEFAULT_WORKLOAD = "kcompile"
# What a redraw reaches: the panes' own children mount after the panes, so an engine update that
# arrives at start-up may find a pane without them.
MOUNTED_LAST = (EventLog, TlbRows, CountersBody)
MIN_SIZE = (80, 24)
# The terminal rows from which the page-table panes are shown (below them the walk grid and the event log
# keep their room): the guest page table, then the second dimension. app.tcss hides them below.
PANES_HEIGHT = {"guest": 28, "second": 36}
MAX_HZ = 20  # never redraw faster than this
RUN_HZ = 10  # pull rate while the engine runs
# ... while it runs interpreted: each redraw then holds the engine until painted, and the UI thread stays idle
# most of the time, ready for a key (a key that finds a redraw under way waits for its paint)
INTERPRETED_HZ = 4
KEY_HOLD_S = 0.3  # the longest a key holds a running engine (one that runs no action of the app's)
SNAPSHOT_EVERY = 0.25  # while running, TLB contents and table paths refresh at most 4 times a second
LOG_OPS_PER_TICK = 40  # at most this many new stepped ops are written to the log per redraw
LOG_REBUILD_OPS = 150  # ops of history shown after a mode or filter change


class MainScreen(Screen):
    """The panes. Too small a terminal shows a message instead; a short one leaves panes out (app.tcss)."""

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield TimelineStrip(id="timeline")
        yield ErrorBar(id="error")
        with Horizontal(id="panes"):
            with Vertical(id="left"):
                yield TlbPane(id="tlb")
                yield CountersPane(id="counters")
            with Vertical(id="right"):
                yield WalkGrid(id="walk")
                yield GuestTablePane(id="guest")
                yield SecondTablePane(id="second")
                yield EventLog(id="events")
        yield Static("", id="too-small")
        yield KeyFooter(show_command_palette=False, compact=True)

    def on_resize(self, event: Resize) -> None:
        w, h = event.size
        small = w < MIN_SIZE[0] or h < MIN_SIZE[1]
        self.set_class(small, "-too-small")
        if small:
            self.query_one("#too-small", Static).update(
                f"terminal too small (need {MIN_SIZE[0]}x{MIN_SIZE[1]}, have {w}x{h})\n\n"
                "enlarge the window, or press q to quit")


class RviApp(App):
    """The live TUI. Constructible without running (tests build it and drive it with a Pilot)."""

    CSS_PATH = "app.tcss"
    TITLE = "rvi-tui"
    # every screen gets -short, -medium or -tall by the terminal's height (app.tcss, the dialogs' CSS)
    VERTICAL_BREAKPOINTS = [(0, "-short"), (PANES_HEIGHT["guest"], "-medium"), (PANES_HEIGHT["second"], "-tall")]
    ENABLE_COMMAND_PALETTE = True
    # The footer must fit 80 columns: keys that belong together share one word (Binding.Group).
    VIEW_KEYS = Binding.Group("view", compact=True)
    SPEED_KEYS = Binding.Group("speed", compact=True)
    BINDINGS = [
        Binding("1", "view('native')", "native", group=VIEW_KEYS),
        Binding("2", "view('shadow')", "shadow", group=VIEW_KEYS),
        Binding("3", "view('nested')", "nested", group=VIEW_KEYS),
        Binding("space", "step", "step", key_display="␣"),
        Binding("b", "back", "back", show=False),
        Binding("left", "back", "back", show=False, priority=True),  # before a pane's own scrolling
        Binding("g", "jump", "go to", show=False),
        Binding("home", "seek_start", "start", show=False, priority=True),
        Binding("n", "find(True)", "next", show=False),
        Binding("N", "find(False)", "prev", show=False),
        Binding("k", "pick_search", "kind", show=False),
        Binding("s", "save_session", "save", show=False),
        Binding("escape", "cancel_seek", "cancel", show=False),
        Binding("p", "toggle_run", "run"),
        Binding("plus,equals_sign", "faster", "faster", key_display="+", group=SPEED_KEYS),
        Binding("minus,underscore", "slower", "slower", key_display="-", group=SPEED_KEYS),
        Binding("l", "large_pages", "large pg"),
        Binding("w", "pick_workload", "workload"),
        Binding("r", "reset", "reset"),
        Binding("e", "export", "export"),
        Binding("t", "study", "study"),
        Binding("c", "settings", "settings"),
        Binding("m", "pin", "pin", show=False),
        Binding("f", "filter_events", "filter", show=False),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("q", "quit", "quit"),
    ]

    def __init__(self, workload_name: str | None = DEFAULT_WORKLOAD, workload_params: dict | None = None,
                 trace: str | None = None, mode: str = "nested", preset: str = C.DEFAULT_PRESET,
                 sets=(), seed: int = 1, guest_page: str | None = None, host_page: str | None = None,
                 levels: int | None = None, *, trace_format: str | None = None, ifetch: bool = False,
                 skip_bad_lines: bool = False, export_dir: str | None = None, speed: int | None = None,
                 run_hz: float = RUN_HZ, session_file=None, data_dirs: tuple[str, ...] = ()) -> None:
        """session_file: a sessionfile.SessionFile to reopen (its run and view replace the run arguments);
        data_dirs: the picker lists the traces and session files in these (`--data`)."""
        super().__init__()
        self.study_results: tuple[str, list[dict]] | None = None  # the Study screen's last results
        self.pinned: tuple[str, dict] | None = None  # a run's counters kept as a baseline (m)
        self.session_file = session_file
        if session_file is not None:
            spec, view = session_file.spec, session_file.view
            workload_name, workload_params, trace, mode = spec.workload, dict(spec.params), spec.trace, view.mode
            preset, sets, seed, guest_page, host_page, levels = (spec.preset, spec.sets, spec.seed, spec.guest_page,
                                                                 spec.host_page, spec.levels)
            trace_format, ifetch, skip_bad_lines = spec.trace_format, spec.ifetch, spec.skip_bad_lines
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r} (known: {', '.join(MODES)})")
        self.spec = make_spec(workload_name, workload_params, trace, preset, sets, seed, guest_page, host_page,
                              levels, trace_format, ifetch, skip_bad_lines)
        self.view_mode = mode
        self.export_dir = export_dir
        self.data_dirs = tuple(data_dirs)
        self.run_hz = min(float(run_hz), MAX_HZ)
        self.runner = Runner(notify=self._engine_nudge)
        if speed is not None:
            self.runner.speed = max(0, min(len(SPEEDS) - 1, speed))
        self.history = CounterHistory()
        self.frame: Frame | None = None  # the last frame drawn
        self.snapshot = None  # the last snapshot of the viewed mode
        self._snap_key: tuple | None = None
        self._seq_seen = 0
        self._gen_seen = -1
        self._rebuild_log = True
        self._op_lines = OpLinesMemo(4 * LOG_REBUILD_OPS)  # about the ops the log shows, in each mode
        self._last_render = 0.0
        self._refresh_pending = False
        self._key_hold = None  # the release of the hold the key under way took on the engine
        self._state_seen = ""
        self._keys_state = ""  # the engine state the footer's keys were last lit or dimmed for (check_action)
        self._error_seen: str | None = None
        self._warmup_seen: set[int] = set()  # generations whose warm-up end was announced
        self.render_count = 0  # redraws so far (the refresh-rate benchmark reads it)
        self.last_export: tuple[str, str] | None = None
        self._queued_run = False  # p pressed while loading
        self._kernels_seen = ""  # the last Frame.kernels: a toast when the compiled kernels take over
        self._tlb_inputs: tuple | None = None
        self._epoch_seen = -1  # Frame.history_epoch of the log on screen
        self.last_session_path: str | None = None

    # --- lifecycle ----------------------------------------------------------------------------------
    def get_default_screen(self) -> Screen:
        self.main_screen = MainScreen(id="main")
        return self.main_screen

    def on_mount(self) -> None:
        if self.is_web:  # a browser tab of `rvi-tui serve`
            from textual.drivers.web_driver import WebDriver

            from .web_driver import write_whole_packets

            if isinstance(self._driver, WebDriver):
                write_whole_packets(self._driver)
        self._tick = self.set_interval(1 / self.run_hz, self._on_tick, pause=True)
        self._busy_tick = self.set_interval(0.5, self._busy_refresh)
        self.call_after_refresh(self.request_refresh)
        self.runner.start()
        self.runner.view = self.view_mode
        self.runner.load(self.spec)
        if self.session_file is not None:
            self._open_view(self.session_file.view)

    def _open_view(self, view) -> None:
        """A session file's view: its filter and search kind, then the op (queued behind the load)."""
        from .sessionfile import event_kind

        if view.event_filter is not None:
            self.main_screen.query_one(EventLog).kinds = set(view.event_filter)
        if view.search is not None:
            self.runner.set_search(event_kind(view.search))
        if view.op:
            self.runner.seek(view.op)
        if view.note:
            self.notify(view.note, title="session", timeout=20)

    def open_session(self, path: str) -> None:
        """Reopen a session file (one the picker offers): its run from op 0, then its mode and view."""
        from .sessionfile import SessionError, load

        try:
            self.session_file = load(path)
        except SessionError as e:
            self.notify(str(e), severity="error", timeout=10)
            return
        if self.runner.state == RUNNING:
            self.runner.pause()
        self.load(self.session_file.spec)
        self.action_view(self.session_file.view.mode)
        self._open_view(self.session_file.view)

    async def on_event(self, event: Event) -> None:
        if isinstance(event, Key) and not event.is_forwarded:  # a key's first pass (a second: back from a widget)
            # sharing the GIL with a running engine, a key's redraw took about twice its CPU time: the engine
            # starts no new sub-batch from the key until the screen its action brings is painted
            self._key_hold = self._hold_engine()
        await super().on_event(event)

    async def run_action(self, action, default_namespace=None) -> bool:
        ran = await super().run_action(action, default_namespace)
        if self._key_hold is not None:
            self.call_after_refresh(self._key_hold)  # after the paint of what the action redrew
            self._key_hold = None
        return ran

    def _hold_engine(self):
        """The engine starts no new sub-batch until the returned release is called (after the paint of what
        the hold is for) or KEY_HOLD_S have passed. Each hold has a release of its own: a paint that lets
        one redraw's hold go must not let go that of a redraw made after it and not painted yet."""
        self.runner.ui_busy()
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                self.runner.ui_done()

        self.set_timer(KEY_HOLD_S, release)
        return release

    def _engine_interpreted(self) -> bool:
        """The engine runs its kernels' source as Python, holding the GIL (while the compiler child works, or for
        good if no compiled kernels can be had: the runner's deferred full collections end with the former only)."""
        return self.runner.state == RUNNING and self._kernels_seen.startswith("interpreted")

    def on_unmount(self) -> None:
        self.runner.stop(timeout=0.5)

    def _engine_nudge(self, reason: str) -> None:
        """Called from the engine thread."""
        self.post_message(EngineUpdate(reason))

    def on_engine_update(self, message: EngineUpdate) -> None:
        self.request_refresh()

    def _on_tick(self) -> None:
        if self._engine_interpreted() and time.perf_counter() - self._last_render < 1 / INTERPRETED_HZ:
            return
        self.request_refresh()

    def _busy_refresh(self) -> None:
        if self.runner.busy or self._kernels_seen.startswith(("interpreted, compiling", "compiled, optimising")):
            self.request_refresh()

    # --- drawing ------------------------------------------------------------------------------------
    def request_refresh(self) -> None:
        """Redraw now, or as soon as MAX_HZ allows (leading edge, then one trailing redraw)."""
        wait = self._last_render + 1 / MAX_HZ - time.perf_counter()
        if wait <= 0:
            self.refresh_panes()
        elif not self._refresh_pending:
            self._refresh_pending = True
            self.set_timer(wait, self._deferred_refresh)

    def _deferred_refresh(self) -> None:
        self._refresh_pending = False
        self.refresh_panes()

    def refresh_panes(self) -> None:
        since = 0 if self._rebuild_log else self._seq_seen
        try:
            for widget in MOUNTED_LAST:
                self.main_screen.query_one(widget)
        except NoMatches:  # the panes are still being mounted: try again shortly
            self.set_timer(0.05, self.request_refresh)
            return
        if self._engine_interpreted():  # it and the redraw would share the GIL up to the paint: keys wait
            release = self._hold_engine()
            self.call_after_refresh(release)
        with self.runner.hold():
            frame = self.runner.pull(self.view_mode, since=since, have=self._snap_key,
                                     snapshot_every=SNAPSHOT_EVERY)
            self._last_render = time.perf_counter()
            self.render_count += 1
            with self.batch_update():
                self._render_frame(frame)

    def _render_frame(self, f: Frame) -> None:
        q = self.main_screen.query_one
        mode = self.view_mode
        if f.generation != self._gen_seen:
            self._gen_seen = f.generation
            self.history.reset()
            self.snapshot = None
            self._snap_key = None
            self._seq_seen = 0
            self._rebuild_log = True
        if f.history_epoch != self._epoch_seen:  # going back, a jump or a search made the log's ops anew
            self._epoch_seen = f.history_epoch
            self._rebuild_log = True
            self.history.reset()
        if f.notice:
            self.notify(f.notice, title="go to", timeout=6)
        if f.state == SEEKING:  # the engine is between ops: keep the panes, say how far the task got
            if f.state != self._state_seen:
                self._state_seen = f.state
                self._tick.pause()
                self.refresh_bindings()
            status = Status(mode=mode, workload=(f.spec or self.spec).label, state=f.state, message=f.task,
                            ops_done=f.ops_done)
            q(StatusBar).show(status)
            self._show_timeline(f)
            return
        if f.snapshot is not None:
            self.snapshot = f.snapshot
            self._snap_key = (f.generation, f.ops_done, mode)
        if f.state != self._state_seen:
            if f.state not in (WARMING, LOADING):
                self._queued_run = False
            if f.state == FINISHED and f.generation == self._gen_seen:
                self.notify(f"{(f.spec or self.spec).label}: finished after {f.ops_done:,} ops. "
                            "r restarts it, w picks another workload", title="end of the workload", timeout=8)
            if f.state == RUNNING:
                self._tick.resume()
            else:
                self._tick.pause()
            self._state_seen = f.state
            self.refresh_bindings()
        elif f.state != self._keys_state:
            # the keys were last checked while the engine was elsewhere (a quick seek, drawn only at its end):
            # check them again, or the footer stays dimmed as for a seek
            self.refresh_bindings()
        if f.warmup_done and f.generation not in self._warmup_seen:
            self._warmup_seen.add(f.generation)
            self.history.reset()  # the counters restarted: rates over a window that spans the restart mean nothing
            self.notify(f"warm-up done at op {f.warmup_ops:,}: the counters restart here and count the steady "
                        "state, as `rvi-tui report` does", title="warm-up", timeout=8)
        if f.kernels.startswith("compiled") and self._kernels_seen.startswith("interpreted, compiling"):
            self.notify("compiled kernels are ready: the engine runs them from here on, on the same ops"
                        + ("" if f.kernels == "compiled" else "; the fully optimised batch builds follow"),
                        title="compiled", timeout=6)
        self._kernels_seen = f.kernels
        self.frame = f
        spec = f.spec or self.spec
        cfg = f.config
        status = Status(mode=mode, workload=spec.label, state=f.state, message=self._busy_message(f),
                        ops_done=f.ops_done, total_ops=f.total_ops,
                        guest_page=cfg.get("guest_page", spec.guest_page or "4k"),
                        host_page=cfg.get("host_page", spec.host_page or "4k"),
                        levels=f"{cfg.get('glevels', '?')}", preset=cfg.get("preset", spec.preset),
                        speed=speed_label(f.speed), ops_rate=f.ops_rate,
                        pid=self.snapshot.pid if self.snapshot is not None else None,
                        warmup_ops=f.warmup_ops, warmup_done=f.warmup_done, kernels=f.kernels)
        if f.state == RUNNING and f.counters is not None:
            self.history.add(f.counters, True)
            window = self.history.window()
            if window is not None:  # simulated accesses per second (ops/s until a window is there)
                status.ops_rate = window[0]["native"]["accesses"] / window[1]
                status.rate_unit = "acc/s"
        q(StatusBar).show(status)
        self._show_timeline(f)
        q(ErrorBar).show_error(f.error)
        if f.error and f.error != self._error_seen:
            self.notify(f.error, title="the engine stopped", severity="error", timeout=10)
        self._error_seen = f.error
        log = q(EventLog)
        log.set_title(mode)
        if f.counters is None or self.snapshot is None:
            note = f.error or self._busy_message(f) or "starting…"
            q(TlbPane).show_note(mode, note)
            self._tlb_inputs = None
            q(WalkGrid).show(mode, None, 4, 4, note)
            q(GuestTablePane).show_note(mode, note)
            q(SecondTablePane).show_note(mode, note)
            q(CountersPane).show(None, None, {}, mode, note)
            if self._rebuild_log:
                log.reset([])
                self._rebuild_log = False
            return
        snap = self.snapshot
        glevels, hlevels = cfg.get("glevels", 4), cfg.get("hlevels", 4)
        follow = f.state != RUNNING
        tlb_inputs = (id(snap), tuple(sorted(f.marks.items())), mode)
        if tlb_inputs != self._tlb_inputs:
            self._tlb_inputs = tlb_inputs
            q(TlbPane).show(mode, snap, f.marks, follow,
                            tlb_summary(f.latest.events.get(mode, ())) if f.latest is not None else "")
        note = "no TLB miss yet: step with space, or run with p" if f.ops_done == 0 or f.state != RUNNING else \
            "no TLB miss sampled yet"
        q(WalkGrid).show(mode, f.walk, glevels, hlevels, note)
        if snap.pid < 0:
            note = "no process is running: the last one has exited"
        elif snap.counters.get("accesses", 0) == 0:
            note = "no memory access yet: space steps to the first one"
        else:
            note = ""
        if note:
            q(GuestTablePane).show_note(mode, note)
            q(SecondTablePane).show_note(mode, note)
        else:
            q(GuestTablePane).show(mode, snap, f.walk)
            q(SecondTablePane).show(mode, snap, f.walk)
        if f.state != RUNNING:
            self.history.add(f.counters, False)
        window = self.history.window() if f.state == RUNNING else None
        q(CountersPane).show(summarize(f.counters), window, f.sparks, mode, pinned=self.pinned)
        self._update_log(log, f)

    def _show_timeline(self, f: Frame) -> None:
        from rvi_tui.engine.timeline import BUCKET  # numpy only

        label = f.search.label() if f.search is not None else ""
        self.main_screen.query_one(TimelineStrip).show(f.ops_done, f.frontier, f.total_ops, f.event_buckets, label,
                                                       BUCKET)

    def _busy_message(self, f: Frame) -> str:
        if f.state == WARMING:
            return f"{f.message} {f.warm_s:.0f} s" if f.warm_s >= 1 else f.message
        if f.state in (LOADING, FINISHED):
            return f.message
        return ""

    def _update_log(self, log: EventLog, f: Frame) -> None:
        mode = self.view_mode
        records = f.records
        nested_walk = 0
        if mode == "nested":  # the references of one nested walk (a large host page ends it early)
            nested_walk = f.config.get("hlevels", 4) + 1 - HOST_LEAF_LEVEL[f.config.get("host_page", "4k")]
        if self._rebuild_log:
            records = records[-LOG_REBUILD_OPS:]
            lines = []
            for r in records:
                lines.extend(self._op_lines.lines(r, mode, nested_walk))
            log.reset(lines)
            self._rebuild_log = False
        elif records:
            lines = []
            if len(records) > LOG_OPS_PER_TICK:
                skipped = len(records) - LOG_OPS_PER_TICK
                records = records[-LOG_OPS_PER_TICK:]
                lines.append(LogLine("op", f"⋯ {skipped:,} stepped ops not shown (too fast to log; slow down with -)"))
            for r in records:
                lines.extend(self._op_lines.lines(r, mode, nested_walk))
            log.add_lines(lines)
        self._seq_seen = f.last_seq

    def _on_notify(self, event) -> None:
        """One toast at a time: a new one replaces the last (they stacked up over the panes). Textual calls
        this, then App's own handler, which adds the new toast (notify only posts a message)."""
        self._notifications.clear()

    def push_screen(self, screen, *args, **kwargs):
        self.clear_notifications()  # a toast would sit on top of the dialog
        return super().push_screen(screen, *args, **kwargs)

    # --- actions ------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if isinstance(self.screen, ModalScreen) and action in APP_KEY_ACTIONS:
            return False  # under a dialog, the app's own keys are inert; Tab, Shift+Tab and ctrl+q still work
        state = self._keys_state = self.runner.state
        if state == SEEKING:
            return True if action in ("cancel_seek", "view", "help", "quit", "pick_search") else None
        if action == "cancel_seek":
            return False
        if action in ("back", "jump", "seek_start", "find", "save_session"):
            return True if state in (PAUSED, RUNNING, FINISHED) else None
        if action == "step":  # while loading, the step waits in the runner's queue
            return True if state in (PAUSED, WARMING, LOADING) else None
        if action in ("export", "large_pages"):
            return True if state in (PAUSED, RUNNING, FINISHED) else None
        return True

    def action_view(self, mode: str) -> None:
        if mode == self.view_mode:
            return
        self.view_mode = mode
        self.runner.view = mode
        self._snap_key = None
        self._rebuild_log = True
        self._last_render = 0.0  # a key gets an immediate redraw
        self.request_refresh()

    def action_step(self) -> None:
        if self.runner.state in (PAUSED, WARMING, LOADING):
            self.runner.step()

    def action_toggle_run(self) -> None:
        state = self.runner.state
        if state == RUNNING:
            self.runner.pause()
        elif state == PAUSED:
            self.runner.run()
        elif state in (WARMING, LOADING):  # queued behind the load: runs (or pauses again) once loaded
            self._queued_run = not self._queued_run
            if self._queued_run:
                self.runner.run()
                self.notify("runs as soon as the simulator is loaded", timeout=3)
            else:
                self.runner.pause()
        elif state == FINISHED:
            self.notify("the workload has finished: r restarts it, w picks another")
        elif state == ERROR:
            self.notify("the engine stopped on an error: r restarts, w picks another workload", severity="warning")
        else:
            self.notify("still loading the simulator…")

    def action_faster(self) -> None:
        self._change_speed(+1)

    def action_slower(self) -> None:
        self._change_speed(-1)

    def _change_speed(self, step: int) -> None:
        """Say the new speed: a narrow status line has dropped it."""
        before = self.runner.speed
        self.runner.set_speed(before + step)
        label = speed_label(self.runner.speed)
        if self.runner.speed == before:
            label += " (already the fastest)" if step > 0 else " (already the slowest)"
        note = "" if SPEEDS[self.runner.speed] is None or SPEEDS[self.runner.speed] > STEP_LIMIT else \
            ": every op stepped, with its events"
        self.notify(f"speed {label}{note}", timeout=2)
        self.request_refresh()

    def load(self, spec: RunSpec) -> None:
        """Start `spec` from op 0 (a fresh session; the old one is dropped). A running app keeps running."""
        running = self.runner.state == RUNNING
        self.spec = spec
        self._queued_run = running
        self.runner.load(spec)
        if running:
            self.runner.run()
        self.request_refresh()

    def action_reset(self) -> None:
        self.load(self.spec)
        self.notify(f"restarted {self.spec.label} from op 0", timeout=3)

    def large_pages_on(self) -> bool:
        cfg = self.frame.config if self.frame is not None else {}
        return cfg.get("guest_page", "4k") != "4k" or cfg.get("host_page", "4k") != "4k"

    def action_large_pages(self) -> None:
        self.refresh_panes()  # the question counts the ops run until now, not until the last redraw
        on = not self.large_pages_on()
        spec = self.spec.with_pages("2m", "2m") if on else self.spec.with_pages("4k", "4k")
        ops = self.frame.ops_done if self.frame is not None else 0
        what = "on: guest and host use 2 MiB pages" if on else "off: 4 KiB pages only"

        def answer(yes: bool | None) -> None:
            if yes:
                self.load(spec)
                self.notify(f"large pages {what}; restarted from op 0", timeout=4)

        if ops > 0:
            self.push_screen(ConfirmScreen(f"Turn large pages {what}?\n\nThis restarts the workload from op 0: "
                                           f"the {ops:,} ops run so far are discarded.", "Large pages"), answer)
        else:
            answer(True)

    def action_pick_workload(self) -> None:
        spec = self.spec

        def chosen(result: dict | None) -> None:
            if not result:
                return
            if "session" in result:
                self.open_session(result["session"])
                return
            if "trace" in result:  # keep the machine; the trace's format is detected (or the one given)
                new = replace(spec, workload=None, params=(), trace=result["trace"], trace_format=None)
            else:
                new = replace(spec, workload=result["workload"], params=result["params"], trace=None,
                              seed=result["seed"])
            self.load(new)

        from rvi_tui.workloads.registry import make_workload, workload_rows  # loaded by the engine thread by now

        def problem(name: str, params: tuple, seed: int) -> str | None:
            """Checked in the dialog: a bad name, parameter or value keeps it open, and the current run."""
            try:
                make_workload(name, seed=seed, **dict(params))
            except WorkloadError as e:
                return str(e)
            return None

        offered = list(offered_files(list(self.data_dirs)).values())
        # in a browser, only what the server offers: no path field
        self.push_screen(WorkloadPicker(workload_rows(), spec.workload, spec.params, spec.seed, spec.trace,
                                        check=problem, offered=offered, typed_path=not self.is_web), chosen)

    def action_export(self) -> None:
        self.refresh_panes()
        f = self.frame
        if f is None or f.counters is None:
            self.notify("nothing to export yet", severity="warning")
            return
        spec = f.spec or self.spec
        document = counters_document(
            f.counters, workload=spec.label,
            spec={"workload": spec.workload, "params": dict(spec.params), "trace": spec.trace, "seed": spec.seed,
                  "preset": spec.preset, "sets": list(spec.sets), "guest_page": spec.guest_page,
                  "host_page": spec.host_page, "levels": spec.levels},
            config=dict(f.config), ops_done=f.ops_done, total_ops=f.total_ops, finished=f.state == FINISHED,
            viewed=self.view_mode, warmup_ops=f.warmup_ops, warmup_done=f.warmup_done)
        directory = self.export_dir or os.getcwd()
        try:
            svg = self.export_screenshot(title=f"rvi-tui · {spec.label} · op {f.ops_done:,}")
            if self.is_web:  # served: the files go to the browser, never into the server's folders
                self._deliver_export(directory, document, svg, spec.trace and os.path.basename(spec.trace)
                                     or spec.workload or "run")
                return
            paths = write_export(directory, document, svg, spec.trace and os.path.basename(spec.trace)
                                 or spec.workload or "run")
        except OSError as e:
            where = e.filename or directory
            self.notify(f"export failed: {where}: {e.strerror or e}. Start rvi-tui with --export-dir DIR to "
                        "write elsewhere", severity="error", timeout=10)
            return
        self.last_export = paths
        self.notify(f"counters: {paths[0]}\nscreenshot: {paths[1]}", title="exported", timeout=10)

    def _deliver_export(self, directory: str, document: dict, svg: str, workload: str) -> None:
        names = [os.path.basename(p) for p in export_names(directory, workload, int(document["ops_done"]))]
        self.deliver_text(io.StringIO(json.dumps(document, indent=2) + "\n"), save_filename=names[0],
                          mime_type="application/json")
        self.deliver_text(io.StringIO(svg), save_filename=names[1], mime_type="image/svg+xml")
        self.last_export = tuple(names)
        self.notify(f"counters: {names[0]}\nscreenshot: {names[1]}", title="exported as downloads", timeout=10)

    # --- travelling in time -------------------------------------------------------------------------
    def _seek(self, op: int, relative: bool = False) -> None:
        self.runner.seek(op, relative)
        self._last_render = 0.0  # the redraw at the seek's end (or of its progress, after TASK_QUIET_S) comes at once

    def action_back(self) -> None:
        self._seek(-1, relative=True)

    def action_seek_start(self) -> None:
        self._seek(0)

    def action_jump(self) -> None:
        f = self.frame
        now = f.ops_done if f is not None else 0

        def go(op: int | None) -> None:
            if op is not None:
                self._seek(op)

        self.push_screen(JumpScreen(now, f.total_ops if f is not None else None), go)

    def action_pick_search(self, then_forward: bool | None = None) -> None:
        def picked(kind) -> None:
            if kind is None:
                return
            self.runner.set_search(kind)
            self.request_refresh()
            if then_forward is not None:
                self.action_find(then_forward)

        self.push_screen(SearchKindScreen(self.runner.search), picked)

    def action_find(self, forward: bool) -> None:
        if self.runner.search is None:  # picked once, then n / N reuse it
            self.action_pick_search(then_forward=forward)
            return
        self.runner.find(self.runner.search, forward)
        self._last_render = 0.0
        self.request_refresh()

    def action_cancel_seek(self) -> None:
        self.runner.cancel()

    def action_save_session(self) -> None:
        from .export import export_names
        from .sessionfile import SUFFIX, SessionView, save, search_dict

        f = self.frame
        if f is None or f.counters is None:
            self.notify("nothing to save yet", severity="warning")
            return
        spec = f.spec or self.spec
        log = self.main_screen.query_one(EventLog)
        from .eventlog import KINDS

        view = SessionView(op=f.ops_done, mode=self.view_mode,
                           event_filter=None if set(log.kinds) == set(KINDS) else tuple(k for k in KINDS if k in log.kinds),
                           search=search_dict(self.runner.search))
        base = export_names(self.export_dir or os.getcwd(), spec.trace and os.path.basename(spec.trace)
                            or spec.workload or "run", f.ops_done)[0]
        path = base[: -len(".json")] + SUFFIX
        if self.is_web:  # served: a download, never a file on the server
            from .sessionfile import dumps

            name = os.path.basename(path)
            self.deliver_text(io.StringIO(dumps(spec, view, path, self.runner.trace_sha256, f.warmup_ops)),
                              save_filename=name, mime_type="application/json")
            self.last_session_path = name
            self.notify(f"{name}\nreopen it: rvi-tui --session {name}", title="session saved as a download",
                        timeout=10)
            return
        try:
            path = save(path, spec, view, self.runner.trace_sha256, f.warmup_ops)
        except OSError as e:
            self.notify(f"saving the session failed: {e}", severity="error", timeout=8)
            return
        self.last_session_path = path
        self.notify(f"{path}\nreopen it: rvi-tui --session {os.path.basename(path)}", title="session saved",
                    timeout=10)

    def action_pin(self) -> None:
        """Keep the counters of the run on screen as a baseline, or drop it: the counters pane then shows the
        current run's change against it, across restarts with other settings."""
        f = self.frame
        if self.pinned is not None:
            self.pinned = None
            self.notify("baseline unpinned", timeout=3)
        elif f is not None and f.counters is not None:
            cfg = f.config or {}
            label = (f"{self.spec.label} · {cfg.get('guest_page', '4k')}/{cfg.get('host_page', '4k')} · "
                     f"{self.spec.preset}{' ' + ' '.join(self.spec.sets) if self.spec.sets else ''} @ op {f.ops_done:,}")
            self.pinned = (label, summarize(f.counters))
            self.notify(f"pinned {label}: change settings (c) or the workload (w) to compare", timeout=5)
        self.request_refresh()

    def action_settings(self) -> None:
        from .settings_screen import SettingsScreen

        def chosen(spec) -> None:
            if spec is not None and spec != self.spec:
                self.load(spec)
                self.notify(f"restarted with the new settings: {spec.describe()}", timeout=4)

        self.push_screen(SettingsScreen(self.spec), chosen)

    def action_study(self) -> None:
        if self.is_web:  # a served tab: its worker processes would take the cores and memory of the other tabs
            self.notify("the study runs worker processes, so not in a browser tab: `rvi-tui study` runs it in a "
                        "terminal", severity="warning", timeout=8)
            return
        from .study_screen import StudyScreen

        self.push_screen(StudyScreen(self.spec.preset))

    def action_help(self) -> None:
        config = self.runner.config  # None until the first run has loaded
        sources = None
        if config is not None:
            from rvi_tui.engine.sources import config_sources, set_by

            spec = self.frame.spec if self.frame is not None and self.frame.spec else self.spec
            sources = config_sources(config, set_by(spec.sets, dict.fromkeys(spec.overrides(), "an option or the l key")))
        self.push_screen(HelpScreen(counter_help(config, sources)))

    def action_filter_events(self) -> None:
        log = self.main_screen.query_one(EventLog)

        def apply(kinds: set | None) -> None:
            if kinds is None:
                return
            log.kinds = set(kinds)
            self._rebuild_log = True
            self._last_render = 0.0
            self.request_refresh()

        self.push_screen(EventFilterScreen(log.kinds), apply)


# The actions of the app's own keys (view, step, …), without their arguments: inert while a dialog is open.
APP_KEY_ACTIONS = frozenset(b.action.split("(")[0] for b in RviApp.BINDINGS) - {"quit"}


def make_spec(workload_name=DEFAULT_WORKLOAD, workload_params=None, trace=None, preset=C.DEFAULT_PRESET, sets=(),
              seed=1, guest_page=None, host_page=None, levels=None, trace_format=None, ifetch=False,
              skip_bad_lines=False) -> RunSpec:
    """The run the app's (and the CLI's) arguments describe."""
    return RunSpec(workload=None if trace else (workload_name or DEFAULT_WORKLOAD),
                   params=tuple((workload_params or {}).items()), trace=trace, preset=preset, sets=tuple(sets),
                   seed=int(seed), guest_page=guest_page, host_page=host_page, levels=levels,
                   trace_format=trace_format, ifetch=bool(ifetch), skip_bad_lines=bool(skip_bad_lines))


def check_args(workload_name: str | None = DEFAULT_WORKLOAD, workload_params: dict | None = None,
               trace: str | None = None, mode: str = "nested", preset: str = C.DEFAULT_PRESET, sets=(),
               seed: int = 1, guest_page: str | None = None, host_page: str | None = None,
               levels: int | None = None, trace_format: str | None = None, **_ignored) -> str | None:
    """A one-line error for arguments that cannot work, before the screen is taken over (None if fine)."""
    if mode not in MODES:
        return f"unknown mode {mode!r} (known: {', '.join(MODES)})"
    if trace_format not in (None, "lackey", "text", "npy"):
        return f"unknown trace format {trace_format!r} (known: lackey, text, npy)"
    spec = make_spec(workload_name, workload_params, trace, preset, sets, seed, guest_page, host_page, levels)
    try:
        spec.config()
        if trace:
            return replay_problem(trace) or None
        from rvi_tui.workloads.registry import make_workload  # ~0.1 s: the trace parsers (numba) stay unloaded

        make_workload(spec.workload, seed=spec.seed, **dict(spec.params))
    except (ConfigError, WorkloadError) as e:
        return str(e)
    return None


def run_app(*, mouse: bool = True, **kwargs) -> int:
    """Run the TUI until the user quits; the exit status (2 for arguments that cannot work).

    kwargs are RviApp's: workload_name, workload_params, trace, mode, preset, sets, seed, guest_page,
    host_page, levels, trace_format, ifetch, skip_bad_lines, export_dir, speed (an index into
    runner.SPEEDS; default flat out), run_hz, session_file (a sessionfile.SessionFile: its run replaces the others),
    data_dirs.
    """
    sf = kwargs.get("session_file")
    if sf is not None:
        spec = sf.spec
        problem = check_args(spec.workload, dict(spec.params), spec.trace, sf.view.mode, spec.preset, spec.sets,
                             spec.seed, spec.guest_page, spec.host_page, spec.levels, spec.trace_format)
    else:
        problem = check_args(**kwargs)
    if problem:
        print(f"rvi-tui: {problem}", file=sys.stderr)
        return 2
    app = RviApp(**kwargs)
    app.run(mouse=mouse)
    code = app.return_code or 0
    if app.runner.busy:
        # quit during a load (a large trace being parsed, say): the engine thread would hold up interpreter
        # exit for as long as it has left (the terminal is already restored; a kernel compile runs in a child
        # process of its own and finishes by itself)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def main() -> int:  # pragma: no cover - `python -m rvi_tui.tui.app`
    return run_app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
