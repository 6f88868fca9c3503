"""Dialogs for travelling in time: the jump prompt (`g`) and the event-kind picker (`k`, or `n` / `N` at first)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from rvi_tui.engine.counters import EXIT_REASONS

OS_OPS = ("fork", "exec", "exit", "munmap", "mmap", "switch")
# (option id, text) in the order the picker lists them; "walk" takes its K from the input below the list
KIND_OPTIONS = (
    ("tlb-miss", "TLB miss"),
    ("walk", "walk with at least K references (K below)"),
    ("guest-pf", "guest page fault"),
    ("npf", "nested page fault (nested mode)"),
    ("exit", "VM exit, any reason"),
    *((f"exit:{r}", f"VM exit: {r}") for r in EXIT_REASONS),
    ("sync", "shadow sync action (shadow mode)"),
    ("flush", "TLB flush or INVLPG"),
    ("os", "OS op, any"),
    *((f"os:{o}", f"OS op: {o}") for o in OS_OPS),
)


def parse_target(text: str, now: int) -> int:
    """'41210', '41,210', '+500', '-1k' -> an op number (ValueError with a short reason)."""
    from rvi_tui.workloads.units import parse_count

    t = text.strip().replace(",", "").replace("_", "")
    if not t:
        raise ValueError("type an op number, or +N / -N")
    sign = t[0] if t[0] in "+-" else ""
    try:
        n = parse_count(t[1:] if sign else t)
    except Exception:
        raise ValueError(f"{text.strip()!r} is not an op number (e.g. 41210, +500, -1k)") from None
    target = now + n if sign == "+" else now - n if sign == "-" else n
    return max(0, target)


def make_kind(option: str, min_refs: int):
    from rvi_tui.engine.timeline import EventKind

    name, _, detail = option.partition(":")
    if name == "exit":
        return EventKind("exit", reason=detail)
    if name == "os":
        return EventKind("os", os_op=detail)
    return EventKind(name, min_refs=min_refs if name == "walk" else 1)


def option_of(kind) -> str:
    if kind is None:
        return "tlb-miss"
    if kind.name == "exit" and kind.reason:
        return f"exit:{kind.reason}"
    if kind.name == "os" and kind.os_op:
        return f"os:{kind.os_op}"
    return kind.name


class JumpScreen(ModalScreen[int | None]):
    """Ask for an op to go to: a number, or +N / -N from the op on screen."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    JumpScreen { align: center middle; }
    JumpScreen > Vertical { width: 60; max-width: 95%; height: auto; border: round $accent;
                            background: $surface; padding: 0 1; }
    JumpScreen #jump-error { color: $text-error; height: auto; }
    """

    def __init__(self, now: int, end: int | None) -> None:
        super().__init__()
        self.now = now
        self.end = end

    def compose(self) -> ComposeResult:
        with Vertical() as v:
            v.border_title = "Go to op · enter goes · esc cancels"
            end = f" of {self.end:,}" if self.end else ""
            yield Label(f"now at op {self.now:,}{end}: an op number, or +N / -N (k, m units: +10k)")
            yield Input(placeholder="e.g. 41210, +500, -1k", id="jump-to")
            yield Static("", id="jump-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        try:
            self.dismiss(parse_target(event.value, self.now))
        except ValueError as e:
            self.query_one("#jump-error", Static).update(str(e))

    def action_cancel(self) -> None:
        self.dismiss(None)


class SearchKindScreen(ModalScreen):
    """Pick the kind of event `n` / `N` go to."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    SearchKindScreen { align: center middle; }
    SearchKindScreen > Vertical { width: 64; max-width: 95%; height: auto; max-height: 95%;
                                  border: round $accent; background: $surface; padding: 0 1; }
    SearchKindScreen OptionList { height: auto; max-height: 14; }
    SearchKindScreen #kind-error { color: $text-error; height: auto; }
    """

    def __init__(self, current=None) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical() as v:
            v.border_title = "n / N go to the next / previous · enter picks · esc cancels"
            yield OptionList(*[Option(text, id=oid) for oid, text in KIND_OPTIONS], id="kinds")
            yield Label("K: references a walk must have at least (1 to 35)")
            refs = self.current.min_refs if self.current is not None and self.current.name == "walk" else 20
            yield Input(str(refs), id="min-refs", type="integer")
            yield Static("", id="kind-error")

    def on_mount(self) -> None:
        ol = self.query_one(OptionList)
        ids = [oid for oid, _ in KIND_OPTIONS]
        ol.highlighted = ids.index(option_of(self.current))
        ol.focus()

    def _pick(self) -> None:
        ol = self.query_one(OptionList)
        option = KIND_OPTIONS[ol.highlighted or 0][0]
        text = self.query_one("#min-refs", Input).value.strip()
        try:
            refs = int(text or "0")
        except ValueError:
            refs = 0
        if option == "walk" and not 1 <= refs <= 35:
            self.query_one("#kind-error", Static).update(f"K must be a whole number from 1 to 35, not {text!r}")
            return
        self.dismiss(make_kind(option, refs))

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self._pick()

    @on(Input.Submitted)
    def _refs_submitted(self) -> None:
        ol = self.query_one(OptionList)
        ol.highlighted = [oid for oid, _ in KIND_OPTIONS].index("walk")
        self._pick()

    def action_cancel(self) -> None:
        self.dismiss(None)
