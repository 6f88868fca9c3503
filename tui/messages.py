"""Messages the engine thread posts to the app (thread-safe ``post_message``).

``EngineUpdate`` carries no state, only a nudge: the app pulls a fresh
``Frame`` from the runner when it handles one. Consecutive updates coalesce
(``can_replace``), so a flood of steps costs one redraw.
"""

from __future__ import annotations

from textual.message import Message


class EngineUpdate(Message):
    """The engine state changed: 'state', 'ready', 'step', 'total' or 'error'."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason

    def can_replace(self, message: Message) -> bool:
        # the handler pulls the whole state, so an older nudge is redundant once a newer one waits
        return isinstance(message, EngineUpdate)


class ExportDone(Message):
    """Counters and a screenshot were written."""

    def __init__(self, json_path: str, svg_path: str) -> None:
        super().__init__()
        self.json_path = json_path
        self.svg_path = svg_path
