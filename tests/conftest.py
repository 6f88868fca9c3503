"""Every test runs on the compiled kernels: compiled once per machine (the first run after an install), in a
child process as the app does, into the user's kernel cache; test processes that start `rvi-tui` inherit
RVI_TUI_KERNELS=compiled, so none of them runs interpreted by surprise. Tests of the interpreted start-up path
choose it themselves."""

from __future__ import annotations

import os
import sys

from rvi_tui.engine import hardware

os.environ["RVI_TUI_KERNELS"] = "compiled"
hardware.configure()


def pytest_sessionstart(session) -> None:
    if hardware.cache_complete() is None:
        print("\nconftest: compiling the simulator kernels (once per machine)…", file=sys.stderr, flush=True)
    hardware.require_compiled()
