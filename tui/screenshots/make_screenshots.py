"""Regenerate the README screenshots: python tui/screenshots/make_screenshots.py

The default app (kcompile, nested view) run for ~150k ops, then stepped until a
TLB miss walks the nested table; one SVG per mode of that same moment, plus the
2-D walk with every walk cache off (all 24 references of a cold 4x4 walk).
"""

from __future__ import annotations

import asyncio
import os
import time

from rvi_tui.tui.app import RviApp

HERE = os.path.dirname(os.path.abspath(__file__))
SIZE = (120, 40)


async def wait(pilot, cond, timeout=300.0):
    start = time.monotonic()
    while not cond():
        assert time.monotonic() - start < timeout, "timed out"
        await pilot.pause(0.05)


async def step_until(pilot, app, cond, limit=5000):
    for _ in range(limit):
        want = app.runner.session.ops_done + 1
        app.runner.step()
        await wait(pilot, lambda want=want: app.runner.session.ops_done >= want)
        await pilot.pause(0.02)
        app.refresh_panes()
        if cond():
            return
    raise AssertionError("not reached")


def save(app, name: str) -> None:
    path = os.path.join(HERE, name)
    with open(path, "w") as f:
        f.write(app.export_screenshot(title=f"rvi-tui · {name[:-4]}"))
    print("wrote", path)


async def main() -> None:
    app = RviApp()
    async with app.run_test(size=SIZE) as pilot:
        await wait(pilot, lambda: app.runner.state == "paused" and app.frame and app.frame.counters)
        await pilot.press("p")
        await wait(pilot, lambda: app.runner.session.ops_done > 150_000)
        await pilot.press("p")
        await wait(pilot, lambda: app.runner.state == "paused")
        await step_until(pilot, app, lambda: app.frame.walk is not None and app.frame.walk.refs >= 6
                         and app.frame.latest is not None and app.frame.walk.op_index == app.frame.ops_done)
        for key, mode in (("1", "native"), ("2", "shadow"), ("3", "nested")):
            await pilot.press(key)
            await pilot.pause(0.3)
            app.refresh_panes()
            await pilot.pause(0.2)
            save(app, f"{mode}.svg")
    cold = RviApp(sets=("pwc.enabled=false", "nwc.enabled=false", "ntlb.enabled=false"))
    async with cold.run_test(size=SIZE) as pilot:
        await wait(pilot, lambda: cold.runner.state == "paused" and cold.frame and cold.frame.counters)
        await step_until(pilot, cold, lambda: cold.frame.walk is not None and cold.frame.walk.refs >= 24)
        await pilot.pause(0.3)
        cold.refresh_panes()
        await pilot.pause(0.2)
        save(cold, "nested-cold-walk.svg")


if __name__ == "__main__":
    asyncio.run(main())
