"""Status bar (the top line) and the error bar under it."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widget import Widget
from textual.widgets import Static

from .. import fmt


@dataclass
class Status:
    mode: str = "nested"
    workload: str = ""
    state: str = "warming"
    message: str = ""
    ops_done: int = 0
    total_ops: int | None = None
    guest_page: str = "4k"
    host_page: str = "4k"
    levels: str = "4"
    preset: str = ""
    speed: str = "max"
    ops_rate: float | None = None
    rate_unit: str = "ops/s"  # or "acc/s" (simulated accesses)
    pid: int | None = None
    warmup_ops: int = 0  # the workload's warm-up length; the counters restart at its end
    warmup_done: bool = False


STATE_GLYPH = {"running": "▶ RUNNING", "paused": "‖ PAUSED", "finished": "■ FINISHED", "error": "! ERROR",
               "warming": "… WARMING UP", "loading": "… LOADING"}


class StatusBar(Widget):
    COMPONENT_CLASSES = {"status--mode", "status--running", "status--paused", "status--error", "status--busy",
                         "status--dim", "status--key"}
    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $foreground; text-wrap: nowrap; text-overflow: ellipsis; }
    StatusBar > .status--mode { background: $accent; color: $text; text-style: bold; }
    StatusBar > .status--running { color: $text-success; text-style: bold; }
    StatusBar > .status--paused { color: $text-warning; text-style: bold; }
    StatusBar > .status--error { color: $text-error; text-style: bold; }
    StatusBar > .status--busy { color: $text-accent; text-style: bold; }
    StatusBar > .status--dim { color: $text-muted; }
    StatusBar > .status--key { color: $text-muted; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.status = Status()

    def show(self, status: Status) -> None:
        self.status = status
        self.refresh()

    def render(self) -> Text:
        s = self.status
        st = self.get_component_rich_style
        sep = (" │ ", st("status--dim"))
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append(f" {fmt.MODE_LABELS.get(s.mode, s.mode)} ", style=st("status--mode"))
        out.append(" ")
        state_cls = {"running": "status--running", "paused": "status--paused", "finished": "status--paused",
                     "error": "status--error"}.get(s.state, "status--busy")
        out.append(STATE_GLYPH.get(s.state, s.state), style=st(state_cls))
        if s.state in ("warming", "loading") and s.message:
            out.append(f"  {s.message}", style=st("status--busy"))
            return out
        out.append(*sep)
        out.append(s.workload)
        out.append(*sep)
        total = f"/{s.total_ops:,}" if s.total_ops else ""
        pct = f" ({100 * s.ops_done / s.total_ops:.1f}%)" if s.total_ops else ""
        out.append(f"op {s.ops_done:,}{total}{pct}")
        if s.ops_rate is not None:
            out.append(f" · {fmt.rate(s.ops_rate)} {s.rate_unit}")
        if s.warmup_ops:
            if s.warmup_done:
                out.append(f" · counted from op {s.warmup_ops:,}", style=st("status--dim"))
            else:
                out.append(f" · warm-up to op {s.warmup_ops:,}", style=st("status--busy"))
        out.append(*sep)
        out.append(f"speed {s.speed}")
        out.append(*sep)
        out.append(f"pages {fmt.page_label(s.guest_page)}/{fmt.page_label(s.host_page)} · {s.levels}-level")
        if s.pid is not None and s.pid >= 0:
            out.append(*sep)
            out.append(f"pid {s.pid}")
        if s.preset:
            out.append(*sep)
            out.append(s.preset, style=st("status--dim"))
        return out


class ErrorBar(Static):
    """Hidden unless the engine reported an error: what happened and what to do."""

    DEFAULT_CSS = """
    ErrorBar { display: none; height: auto; max-height: 4; background: $error-muted; color: $text;
               padding: 0 1; border-left: thick $error; }
    ErrorBar.-shown { display: block; }
    """

    def show_error(self, text: str | None) -> None:
        if text:
            self.update(Text.assemble(("! ", "bold"), text,
                                      "\n   r restarts this workload · w picks another (or a trace) · q quits"))
        self.set_class(bool(text), "-shown")
