"""The settings screen (`c`): the machine of the run — preset, page sizes, paging levels and any config key
— changed from the app. A value the config refuses is shown in the dialog, which stays open: the run on
screen is kept until a valid machine is applied (it then restarts from op 0)."""

from __future__ import annotations

import shlex
from dataclasses import replace

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select

from rvi_tui.engine import config as C

from .runner import RunSpec

PAGES = ("4k", "2m", "1g")


class SettingsScreen(ModalScreen[RunSpec | None]):
    BINDINGS = [Binding("escape", "cancel", "cancel")]
    DEFAULT_CSS = """
    SettingsScreen { align: center middle; }
    SettingsScreen > Vertical { width: 76; height: auto; max-height: 100%; border: thick $primary;
                                background: $surface; padding: 0 1; }
    SettingsScreen Horizontal { height: auto; }
    SettingsScreen Label { padding: 1 1 0 0; width: 100%; }
    SettingsScreen Horizontal Label { width: 14; padding: 0 1 0 0; }  /* a field's name, beside it */
    SettingsScreen Select { width: 1fr; }
    SettingsScreen #settings-error { color: $text-error; width: 100%; padding: 0; }
    SettingsScreen #settings-buttons { align-horizontal: right; }
    SettingsScreen.-short Label { padding: 0 1 0 0; }  /* whole at 80x24: the fields are compact, one row each */
    """

    def __init__(self, spec: RunSpec) -> None:
        super().__init__()
        self.spec = spec
        cfg = spec.config()
        self.current = {"preset": spec.preset, "guest": cfg["guest.page"], "host": cfg["host.page"],
                        "levels": cfg["guest.levels"]}

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("[b]Machine settings[/b] — applying restarts the run from op 0", markup=True)
            for key, label, options in (
                ("preset", "preset", C.preset_names()),
                ("guest", "guest pages", PAGES),
                ("host", "host pages", PAGES),
                ("levels", "paging levels", (4, 5)),
            ):
                with Horizontal():
                    yield Label(label)
                    yield Select([(str(o), o) for o in options], value=self.current[key], allow_blank=False,
                                 id=f"settings-{key}", compact=True)
            yield Label("config keys (KEY=VALUE, space-separated; see rvi-tui report --show-config)")
            yield Input(" ".join(self.spec.sets), placeholder="e.g. tlb.l2.entries=1536 pwc.enabled=false",
                        id="settings-sets", compact=True)
            yield Label("", id="settings-error")
            with Horizontal(id="settings-buttons"):
                yield Button("Apply", variant="primary", id="settings-apply")
                yield Button("Cancel", id="settings-cancel")

    def spec_chosen(self) -> RunSpec:
        """The spec the form describes; raises ConfigError (one line) if the config refuses it."""
        value = lambda key: self.query_one(f"#settings-{key}", Select).value
        try:
            sets = tuple(shlex.split(self.query_one("#settings-sets", Input).value))
        except ValueError as e:
            raise C.ConfigError(f"config keys: {e}") from None
        changed = lambda key, field: value(key) if value(key) != self.current[key] else getattr(self.spec, field)
        spec = replace(self.spec, preset=value("preset"), guest_page=changed("guest", "guest_page"),
                       host_page=changed("host", "host_page"), levels=changed("levels", "levels"), sets=sets)
        spec.config()  # every key and value checked here
        return spec

    @on(Button.Pressed, "#settings-apply")
    @on(Input.Submitted, "#settings-sets")
    def apply(self) -> None:
        try:
            spec = self.spec_chosen()
        except C.ConfigError as e:
            self.query_one("#settings-error", Label).update(str(e))
            return
        self.dismiss(spec)

    @on(Button.Pressed, "#settings-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
