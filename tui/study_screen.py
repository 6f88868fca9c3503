"""The Study screen: the default study (VMware's table) run in the background, as a table and as bars.

The cells run in worker processes (engine.executors.run_local) driven from a thread worker, so the
app stays responsive; leaving the screen while it runs stops the workers. The results stay with the
app: opening the screen again shows them at once (`r` runs the study again).
"""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, ProgressBar, Static
from textual.worker import get_current_worker

from rvi_tui.engine import executors, sweep

from . import charts, render


class StudyScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,t", "close", "back"), Binding("r", "rerun", "run again")]
    DEFAULT_CSS = """
    StudyScreen { layout: vertical; background: $background; }
    StudyScreen #study-status { height: auto; padding: 0 1; }
    StudyScreen ProgressBar { padding: 0 1; height: 1; }
    StudyScreen VerticalScroll { height: 1fr; }
    StudyScreen #study-table, StudyScreen #study-chart { height: auto; padding: 0 1; }
    """

    def __init__(self, preset: str, jobs: int | None = None, grid: sweep.Grid | None = None) -> None:
        """grid: another study than the default (the tests use a small one)."""
        super().__init__()
        self.preset = preset
        self.jobs = jobs or executors.default_jobs()
        self.grid = grid or sweep.build_grid(preset=preset)
        self.status, self.table, self.chart = "", None, None  # what the screen shows, for a reader or a test

    def compose(self) -> ComposeResult:
        yield Static("", id="study-status")
        yield ProgressBar(total=len(self.grid.cells), show_eta=True, id="study-bar")
        with VerticalScroll():
            yield Static("", id="study-table")
            yield Static("", id="study-chart")
        yield Footer()

    def on_mount(self) -> None:
        kept = getattr(self.app, "study_results", None)
        if kept and kept[0] == self.preset:
            self.show_results(kept[1], finished=True)
        else:
            self.action_rerun()

    def action_rerun(self) -> None:
        self.query_one("#study-bar", ProgressBar).update(progress=0)
        self.status = "running"
        self.query_one("#study-status", Static).update(
            f"Running the study: {len(self.grid.cells)} cells (workloads × guest/host pages, preset {self.preset}) "
            f"in {min(self.jobs, len(self.grid.cells))} worker processes…")
        self.run_study()

    @work(thread=True, exclusive=True, group="study")
    def run_study(self) -> None:
        worker = get_current_worker()
        results: dict[str, dict] = {}
        cells = self.grid.cells
        for result in executors.run_local(cells, self.jobs, stop=lambda: worker.is_cancelled):
            results[result["key"]] = result
            ordered = [results[c.key] for c in cells if c.key in results]
            self.app.call_from_thread(self.show_results, ordered, len(ordered) == len(cells))

    def show_results(self, results: list[dict], finished: bool) -> None:
        self.query_one("#study-bar", ProgressBar).update(progress=len(results))
        if finished:
            self.app.study_results = (self.preset, results)
            failed = sum(1 for r in results if r["error"])
            self.status = (f"The study, preset {self.preset}: {len(results)} cells"
                           + (f", {failed} failed" if failed else "") + " · r runs it again · esc goes back")
            self.query_one("#study-status", Static).update(self.status)
        self.table = render.study_table(results, self.grid.swept)
        self.query_one("#study-table", Static).update(self.table)
        chart = Text(f"overhead vs native, % (preset {self.preset}, seed 1)\n", style="bold")
        chart.append_text(charts.terminal_bars(results, self.grid.swept, width=max(10, self.size.width - 40)))
        self.chart = chart
        self.query_one("#study-chart", Static).update(chart)

    def action_close(self) -> None:
        self.workers.cancel_group(self, "study")  # the thread sees it and stops the worker processes
        self.app.pop_screen()
