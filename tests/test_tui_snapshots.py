"""SVG snapshots of the three views after a fixed number of steps on a fixed seed.

Deterministic by construction: the app is paused (no rates, no clock on
screen), the steps go through the engine's step path (one sparkline sample
per op), and the op total is awaited before the picture is taken. Update with
``pytest tests/test_tui_snapshots.py --snapshot-update`` after checking
``snapshot_report.html``.
"""

from __future__ import annotations

import time

import pytest

from rvi_tui.tui.app import RviApp

SIZE = (120, 40)
STEPS = 4932  # kcompile seed 1, jobs 20: a 2-D walk with L1D, L2$ and DRAM references and NWC skips


def make_app(**kw) -> RviApp:
    return RviApp(workload_name="kcompile", workload_params={"jobs": 20}, seed=1, **kw)


async def _wait(pilot, cond, timeout=400.0):  # a cold numba cache compiles first
    start = time.monotonic()
    while not cond():
        assert time.monotonic() - start < timeout, "timed out"
        await pilot.pause(0.05)


def drive(key: str, steps: int = STEPS):
    async def run_before(pilot) -> None:
        app = pilot.app
        await _wait(pilot, lambda: app.runner.state == "paused" and app.frame is not None
                    and app.frame.counters is not None)
        app.runner.step(steps)  # what `space` does, `steps` times, in one engine command
        await _wait(pilot, lambda: app.runner.session.ops_done == steps and app.runner.total_ops is not None)
        await pilot.press(key)
        await pilot.pause(0.2)
        app.refresh_panes()
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()  # until the app is idle: under load the event log's scroll to its end came late

    return run_before


@pytest.mark.parametrize("key", ["1", "2", "3"], ids=["native", "shadow", "nested"])
def test_mode_view_snapshot(snap_compare, key):
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=drive(key))


def test_opening_screen_snapshot(snap_compare):
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=drive("3", steps=0))


def test_too_small_terminal_snapshot(snap_compare):
    assert snap_compare(make_app(), terminal_size=(70, 20))


def test_minimum_size_snapshot(snap_compare):
    """80x24, the stated minimum: every pane whole, the page-table panes left out (see test_tui_small)."""
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=drive("3"))
