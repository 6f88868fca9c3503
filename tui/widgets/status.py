"""Status bar (the top line) and the error bar under it."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widget import Widget
from textual.widgets import Static

from .. import fmt
from ._lines import RichLines


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
    kernels: str = ""  # "compiled", or "interpreted, compiling 12 s" until the compiled kernels are ready


STATE_GLYPH = {"running": "▶ RUNNING", "paused": "‖ PAUSED", "finished": "■ FINISHED", "error": "! ERROR",
               "warming": "… WARMING UP", "loading": "… LOADING", "seeking": "… SEEKING"}


class StatusBar(RichLines, Widget):
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
        """The whole line if it fits; else, cheapest first, the preset, the percentage, the speed, the
        pid and the rate left out, then the workload label cut to 24 characters, the page sizes left
        out, the kernels' state shortened ("compiling 12 s"), the label cut to 12, the kernels' state left
        out, and the warm-up phase left out last: a long label never pushes the op
        count off a narrow terminal."""
        for cut in range(len(DROP_ORDER) + 1):
            dropped = DROP_ORDER[:cut]
            text = Text(no_wrap=True, overflow="ellipsis")
            width = min([LABEL_CUTS[step] for step in dropped if step in LABEL_CUTS], default=None)
            for name, segments in self._parts(width, short_kernels="kernels-short" in dropped):
                if name not in dropped:
                    for segment in segments:
                        text.append(*segment)
            if text.cell_len <= self.size.width:
                break
        return text

    def _parts(self, label_width: int | None, short_kernels: bool = False) -> list[tuple[str, list[tuple[str, object]]]]:
        """The line as named parts, each a list of (text, style) segments, in display order; the workload
        label cut to label_width characters when one is given, the kernels' state without its first word
        ("compiling 12 s" for "interpreted, compiling 12 s") when short_kernels."""
        s = self.status
        st = self.get_component_rich_style
        sep = (" │ ", st("status--dim"))
        state_cls = {"running": "status--running", "paused": "status--paused", "finished": "status--paused",
                     "error": "status--error"}.get(s.state, "status--busy")
        parts = [("mode", [(f" {fmt.MODE_LABELS.get(s.mode, s.mode)} ", st("status--mode")), (" ", ""),
                           (STATE_GLYPH.get(s.state, s.state), st(state_cls))])]
        if s.state in ("warming", "loading", "seeking") and s.message:
            return parts + [("message", [(f"  {s.message}", st("status--busy"))])]
        total = f"/{s.total_ops:,}" if s.total_ops else ""
        label = s.workload
        if label_width is not None and len(label) > label_width:
            label = label[:label_width - 1] + "…"
        parts.append(("ops", [sep, (label, ""), sep, (f"op {s.ops_done:,}{total}", "")]))
        if s.total_ops:
            parts.append(("percent", [(f" ({100 * s.ops_done / s.total_ops:.1f}%)", "")]))
        if s.ops_rate is not None:
            parts.append(("rate", [(f" · {fmt.rate(s.ops_rate)} {s.rate_unit}", "")]))
        if s.warmup_ops:
            parts.append(("warmup", [(f" · counted from op {s.warmup_ops:,}", st("status--dim")) if s.warmup_done
                                     else (f" · warm-up to op {s.warmup_ops:,}", st("status--busy"))]))
        if s.kernels and s.kernels != "compiled":
            kernels = s.kernels.split(", ", 1)[-1] if short_kernels else s.kernels
            parts.append(("kernels", [sep, (kernels, st("status--busy"))]))
        parts.append(("speed", [sep, (f"speed {s.speed}", "")]))
        pages = f"pages {fmt.page_label(s.guest_page)}/{fmt.page_label(s.host_page)} · {s.levels}-level"
        parts.append(("pages", [sep, (pages, "")]))
        if s.pid is not None and s.pid >= 0:
            parts.append(("pid", [sep, (f"pid {s.pid}", "")]))
        if s.preset:
            parts.append(("preset", [sep, (s.preset, st("status--dim"))]))
        return parts


# What a narrow status line gives up, first to last; a LABEL_CUTS step cuts the workload label instead.
DROP_ORDER = ("preset", "percent", "speed", "pid", "rate", "label-24", "pages", "kernels-short", "label-12", "kernels",
              "warmup")
LABEL_CUTS = {"label-24": 24, "label-12": 12}


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
