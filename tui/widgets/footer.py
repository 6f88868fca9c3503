"""The key footer, whole at any width: on a narrow terminal it gives up keys, least essential first.

As the status line gives up its parts, the footer leaves out the keys ranked
last in ``ESSENTIAL`` (keys not ranked there go first) until the rest fits;
``?`` and ``q`` stay, and the help lists every key.
"""

from __future__ import annotations

from textual.widgets import Footer
from textual.widgets._footer import FooterKey, FooterLabel, KeyGroup

# actions, most essential first
ESSENTIAL = ("quit", "help", "view", "step", "toggle_run", "pick_workload", "settings", "faster", "slower",
             "large_pages", "study", "reset", "export")


class KeyFooter(Footer):
    DEFAULT_CSS = """
    KeyFooter.-compact FooterLabel { margin: 0 1 0 0; }
    KeyFooter.-compact KeyGroup.-compact { padding-left: 0; }
    """

    def bindings_changed(self, screen) -> None:
        """Light or dim the keys in place when the keys shown are the same and only that changed (a seek's start
        and end): a recompose mounts and styles every key anew and fits them again, 60-150 ms here, which fell
        on the key pressed just after a jump."""
        if self._bindings_ready and screen.app.app_focus and self.is_attached and screen is self.screen:
            keys = list(self.query(FooterKey))
            shown = shown_bindings(screen)
            if keys and [(k.key, k.action) for k in keys] == [(b.key, b.action) for b, _ in shown]:
                for k, (_, enabled) in zip(keys, shown):
                    k._disabled = not enabled  # what FooterKey's own click checks
                    k.set_class(not enabled, "-disabled")
                return
        super().bindings_changed(screen)

    def on_resize(self) -> None:
        self.call_after_refresh(self.fit_keys)

    def compose(self):
        self._cells: dict[int, int] = {}  # the width of each key (or group, or label), measured while shown
        yield from super().compose()
        self.call_after_refresh(self.fit_keys)

    def fit_keys(self) -> None:
        """Show every key, then hide the least essential ones until the rest fits the footer's width."""
        if not self.size.width:
            return
        items = []  # (rank, widget): a group's label goes with its keys
        for child in self.children:
            if isinstance(child, FooterKey):
                action = child.action
            elif isinstance(child, KeyGroup):
                keys = child.query(FooterKey)
                action = keys.first().action if keys else ""
            elif isinstance(child, FooterLabel) and items:
                items.append((items[-1][0], child))
                continue
            else:
                continue
            name = action.removeprefix("app.").split("(")[0]
            items.append((ESSENTIAL.index(name) if name in ESSENTIAL else len(ESSENTIAL), child))
        cells = self._cells
        for _, w in items:
            if id(w) not in cells and w.display and w.outer_size.width:  # measured once laid out, then kept
                cells[id(w)] = w.outer_size.width + w.styles.margin.left + w.styles.margin.right
            w.display = True
        if any(id(w) not in cells for _, w in items):  # not laid out yet: measure after the next refresh
            self.call_after_refresh(self.fit_keys)
            return
        width = sum(cells[id(w)] for _, w in items)
        for rank in sorted({rank for rank, _ in items}, reverse=True):
            if width <= self.size.width:
                break
            for r, widget in items:
                if r == rank and rank > 1:  # ? and q always stay
                    width -= cells[id(widget)]
                    widget.display = False


def shown_bindings(screen) -> list:
    """(binding, enabled) of each key the footer shows, in its order: the first shown binding of each action,
    as ``Footer.compose`` picks them."""
    first: dict = {}
    for _, binding, enabled, _ in screen.active_bindings.values():
        if binding.show and binding.action not in first:
            first[binding.action] = (binding, enabled)
    return list(first.values())
