"""Modal screens: help, confirmation, workload picker, event filter."""

from __future__ import annotations

import os
import shlex

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, SelectionList, Static
from textual.widgets.option_list import Option

from rvi_tui.workloads.bytestream import replay_problem

from . import fmt
from .eventlog import KIND_LABELS, KINDS

HELP = """\
# rvi-tui: address translation under virtualization, live

Three machines run the **same op stream in lockstep**: *native* (no hypervisor),
*shadow* paging (the hypervisor keeps gVA→hPA shadow tables in sync with the
guest's) and *nested* paging (AMD RVI / Intel EPT: the hardware walks the guest
table and translates each guest-physical address through the nested table).
Switching mode changes what you look at, never the history.

## Keys

| key | action |
|---|---|
| `1` `2` `3` | view native / shadow / nested |
| `space` | step exactly one op (while paused) |
| `b` `←` | back one op: the screen is what a run stepped there shows |
| `g` | go to an op: a number, or +N / -N · `Home` goes to op 0 |
| `n` `N` | next / previous op with an event of the chosen kind (`k` picks it; `esc` cancels a long search) |
| `s` | save a session file (`*.rvi.json`): `rvi-tui --session FILE` reopens it here |
| `p` | run / pause |
| `+` `-` | faster / slower (1 op/s … max); up to 200 ops/s every op is shown; a toast says the speed |
| `l` | large pages on/off (guest and host 2 MiB pages; restarts the workload) |
| `w` | pick a workload (built-ins, or a trace file) |
| `r` | restart the workload from op 0 |
| `e` | export counters (JSON) and a screenshot (SVG) |
| `c` | settings: preset, page sizes, paging levels, any config key (restarts the run) |
| `m` | pin this run's counters as a baseline (again: unpin); the counters pane shows the change against it |
| `t` | the study: VMware's table run in the background, as a table and bars |
| `f` | filter the event log by kind |
| `tab` | move between panes, and between the fields of a dialog; arrows / PgUp / PgDn scroll the focused pane |
| `?` | this help · `q` quits |

On a narrow terminal the footer leaves out the least essential keys first;
they all still work. On a short one (below 36 rows, then 28) the second
dimension and then the guest page table pane are left out, so that the walk
grid and the event log keep their room; every pane shows its essential
columns whole at 80×24, and text cut short ends in `…`, never inside a number.

## Panes

* **TLB**: L1 (per page size) and L2 entries: set, way, virtual page, frame,
  size, PCID/VPID, flags **W**ritable **D**irty **G**lobal. The last op's entry is
  marked `● hit`, `+ fill` or `× fill` (a fill that evicted another entry).
* **2-D walk** (nested): rows are the guest-physical addresses a TLB miss must
  translate: each guest table page from gCR3 down (gL4 … gL1), then the data
  page; columns are the nested levels nL4 … nL1 and then the read of the guest
  entry (gPTE). Up to (n+1)(m+1)-1 = 24 references (35 with 5 levels), each
  numbered in walk order (a narrow pane leaves the numbers out) and labelled
  with where it was served: `L1D` `L2$` `L3$` (data caches) or `DRAM`. Cells a
  walk cache saved show its name: `PWC` (guest levels), `NWC` (nested levels),
  `NTLB` (a whole nested walk); `─` marks a row a PWC hit made unnecessary; `·`
  a cell not needed (a large page ends the walk early). Native and shadow show
  their 1-D walk. "N saved" counts references, as the event log does (below).
  A walk that faults is retried after the handler: the grid shows the last
  completed walk, the event log every attempt.
* **Guest page table**: the path from CR3 to the last access's leaf. `●` marks
  entries the last walk read (its reference number and where it was served),
  `○` entries a walk cache saved.
* **Second dimension**: *nested* shows the nested-table path of every gPA of
  the last walk; *shadow* the shadow path with each entry's sync state
  (in sync, unsync, write-protected guest page); *native* the physical frame.
* **Events**: per op: TLB, WALK, #PF (faults), EXIT (VM exits with reason and
  cycles), SYNC (shadow-sync), OS, FLUSH. At batch speeds only sampled ops have
  events (the counters count every op).
* **Counters**: all three modes side by side, kvm_stat style: totals and
  current rates (*now*: per second for counts, over the last second for ratios);
  rows that are zero everywhere are hidden. Cycles per access, then its six
  parts per access (base, TLB, walk, guest OS, VM exits, hypervisor), which add
  up to it. Sparklines (on a tall enough pane): cycles per access, one shared
  log scale. Best mode green, worst red; the viewed mode is marked `▸`, or in
  capitals on a narrow pane. Every row is explained below.

Set `NO_COLOR=1` for a monochrome display: every mark also has a glyph or word.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "close", key_display="esc")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 96; max-width: 95%; height: 90%; border: round $accent;
                                  background: $surface; padding: 0 1; }
    """

    def __init__(self, numbers: str = "") -> None:
        """``numbers``: the sections that explain every counter and cost of the run (explain.counter_help)."""
        super().__init__()
        self.numbers = numbers

    def compose(self) -> ComposeResult:
        from textual.widgets import Markdown  # markdown-it loads only when help is first shown

        with VerticalScroll() as v:
            v.border_title = "Help · esc closes"
            yield Markdown(HELP + "\n" + self.numbers, id="help-text")

    def action_close(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]
    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical { width: 64; max-width: 95%; height: auto; border: round $warning;
                               background: $surface; padding: 1 2; }
    ConfirmScreen Horizontal { height: auto; align-horizontal: right; margin-top: 1; }
    ConfirmScreen Button { margin-left: 2; }
    """

    def __init__(self, question: str, title: str = "Confirm") -> None:
        super().__init__()
        self.question = question
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical() as v:
            v.border_title = self.title_text
            yield Static(self.question, id="question")
            with Horizontal():
                yield Button("Yes (y)", variant="warning", id="yes")
                yield Button("No (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


def parse_params(text: str) -> tuple:
    """'jobs=50 footprint=64m' -> (('jobs', '50'), ('footprint', '64m'))."""
    out = []
    for token in shlex.split(text):
        key, sep, value = token.partition("=")
        if not sep or not key:
            raise ValueError(f"expected key=value, got {token!r}")
        out.append((key.strip(), value.strip()))
    return tuple(out)


OPTION_TEXT = 62  # a workload's description in the list: one line at 80 columns, beside a scroll bar (the whole one shows below)
DESCRIPTION_TEXT = 74


class WorkloadPicker(ModalScreen[dict | None]):
    """Built-in workloads with parameters and seed, or a file; every field reachable with Tab.

    ``workloads`` are (name, description, parameters with their defaults); ``check(name, params, seed)``
    says what is wrong with a choice (None if nothing): a bad choice keeps the dialog open with the reason,
    and the current run goes on. A file is one of `offered` (``offered.OfferedFile``s from the `--data`
    directories; the result is ``{file.kind: file.path}``), or a trace path typed in, unless `typed_path` is
    False (a served app).
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    WorkloadPicker { align: center middle; }
    WorkloadPicker > Vertical { width: 100; max-width: 100%; height: auto; max-height: 100%;
                                border: round $accent; background: $surface; padding: 0 1; }
    WorkloadPicker OptionList { height: auto; max-height: 14; }
    WorkloadPicker #offered { max-height: 8; }
    WorkloadPicker Label { margin-top: 1; color: $text-muted; }
    WorkloadPicker #picker-error { color: $text-error; height: auto; min-height: 1; }
    WorkloadPicker #description { color: $text-muted; height: 3; padding: 0 1; }
    WorkloadPicker Horizontal { height: auto; }
    WorkloadPicker #params { width: 3fr; }
    WorkloadPicker #seed { width: 1fr; }
    WorkloadPicker.-short Label { margin-top: 0; }
    WorkloadPicker.-short OptionList { max-height: 10; }  /* whole at 80x24 with three offered files */
    WorkloadPicker.-short #offered { max-height: 3; }
    """

    def __init__(self, workloads: list[tuple[str, str, str]], current: str | None, params: tuple = (),
                 seed: int = 1, trace: str | None = None, *, check=None, offered=(), typed_path: bool = True) -> None:
        super().__init__()
        self.offered = list(offered)
        self.typed_path = typed_path
        self.workloads = workloads
        self.current = current
        self.params = params
        self.seed = seed
        self.trace = trace
        self.check = check or (lambda name, params, seed: None)

    def compose(self) -> ComposeResult:
        with Vertical() as v:
            v.border_title = "Pick a workload · tab moves · enter runs · esc cancels"
            yield OptionList(*[Option(f"{name:<10} {fmt.fit(desc, OPTION_TEXT)}", id=name)
                               for name, desc, _ in self.workloads], id="workloads", compact=True)
            yield Static("", id="description")
            yield Label("parameters (key=value …; the defaults are above) · seed")
            with Horizontal():
                yield Input(self._params_text(), placeholder="defaults", id="params", compact=True)
                yield Input(str(self.seed), placeholder="1", id="seed", type="integer", compact=True)
            if self.offered:
                yield Label("…or one of these files (tours/: the guided tour's sessions); enter opens it")
                yield OptionList(*[Option(f.key) for f in self.offered], id="offered", compact=True)
            if self.typed_path:
                yield Label("…or a trace file (Valgrind lackey, addresses as text, or .npy); enter opens it")
                yield Input(self.trace or "", placeholder="path/to/trace", id="trace", compact=True)
            yield Static("", id="picker-error")

    def on_mount(self) -> None:
        ol = self.query_one("#workloads", OptionList)
        names = [n for n, _, _ in self.workloads]
        if self.current in names:
            ol.highlighted = names.index(self.current)
        ol.focus()

    def _error(self, text: str) -> None:
        self.query_one("#picker-error", Static).update(text)

    def _submit_builtin(self) -> None:
        ol = self.query_one("#workloads", OptionList)
        if ol.highlighted is None:
            self._error("choose a workload in the list")
            return
        name = self.workloads[ol.highlighted][0]
        try:
            params = parse_params(self.query_one("#params", Input).value)
        except ValueError as e:
            self._error(f"parameters: {e}")
            return
        seed_text = self.query_one("#seed", Input).value.strip() or "1"
        try:
            seed = int(seed_text)
        except ValueError:
            self._error(f"seed must be an integer, not {seed_text!r}")
            return
        problem = self.check(name, params, seed)
        if problem:
            self._error(problem)
            return
        self.dismiss({"workload": name, "params": params, "seed": seed})

    @on(OptionList.OptionSelected, "#workloads")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self._submit_builtin()

    @on(OptionList.OptionSelected, "#offered")
    def _offered_selected(self, event: OptionList.OptionSelected) -> None:
        chosen = self.offered[event.option_index]
        self.dismiss({chosen.kind: chosen.path})

    @on(OptionList.OptionHighlighted, "#workloads")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        """Parameters belong to one workload: show the current ones only on the current workload."""
        self._error("")
        _, desc, defaults = self.workloads[event.option_index]
        self.query_one("#description", Static).update(
            Text(fmt.fit(desc, DESCRIPTION_TEXT)).append(f"\nparameters (defaults): {defaults or 'none'}"))
        params = self.query_one("#params", Input)
        params.value = self._params_text() if event.option.id == self.current else ""

    def _params_text(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.params)

    @on(Input.Submitted, "#params,#seed")
    def _params_submitted(self) -> None:
        self._submit_builtin()

    @on(Input.Submitted, "#trace")
    def _trace_submitted(self, event: Input.Submitted) -> None:
        path = os.path.expanduser(event.value.strip())
        problem = replay_problem(path) if path else "type the path of a trace file"
        if problem:
            self._error(problem)
        else:
            self.dismiss({"trace": path})

    def action_cancel(self) -> None:
        self.dismiss(None)


class EventFilterScreen(ModalScreen[set | None]):
    BINDINGS = [Binding("escape,f", "close", "Apply")]
    DEFAULT_CSS = """
    EventFilterScreen { align: center middle; }
    EventFilterScreen > Vertical { width: 60; max-width: 95%; height: auto; border: round $accent;
                                   background: $surface; padding: 0 1; }
    EventFilterScreen SelectionList { height: auto; }
    """

    def __init__(self, enabled: set[str]) -> None:
        super().__init__()
        self.enabled = set(enabled)

    def compose(self) -> ComposeResult:
        with Vertical() as v:
            v.border_title = "Show events of kind · space/enter toggles · esc applies"
            yield SelectionList[str](*[(f"{k:<6} {KIND_LABELS[k]}", k, k in self.enabled) for k in KINDS],
                                     id="kinds")

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()

    def action_close(self) -> None:
        self.dismiss(set(self.query_one(SelectionList).selected))
