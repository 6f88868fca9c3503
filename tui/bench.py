"""How responsive the live UI is while the engine runs flat out, and how soon it answers on a cold cache.

    python -m rvi_tui.tui.bench [--seconds 5] [--keys 30] [--workload kcompile]
    python -m rvi_tui.tui.bench --cold [--keys 30]
    python -m rvi_tui.tui.bench --travel [--ops 1000000]

Measures, headless (Textual's test driver, 120x40), with the engine running at
full speed in its thread:

* refresh rate: redraws per second (``RviApp.render_count``), capped at 20 Hz;
* key → pane latency: from a mode key entering the app's input queue (what the
  terminal driver does) until the panes hold the new mode's content (the end
  of the redraw that key caused); p50 / p95 / max over a series of presses;
* engine throughput with the UI on screen (ops/s, all three modes in lockstep).

With ``--cold`` the kernel cache is a new, empty folder, as on a fresh install:

* first step: from creating the app until the first ``space`` (pressed as soon
  as the first frame is drawn, queued behind the load) has its result on screen;
* key → pane latency while the compiler child runs and the engine runs the
  kernels interpreted, flat out;
* when the compiled kernels took over, and that the run went on from the same op.

Figures are printed, not asserted: they depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from textual import events


async def measure(seconds: float = 5.0, keys: int = 30, workload: str = "kcompile", params: dict | None = None,
                  size=(120, 40), run_hz: float | None = None) -> dict:
    app, renders = timed_app(workload_name=workload, workload_params=params or {},
                             **({"run_hz": run_hz} if run_hz else {}))
    async with app.run_test(size=size) as pilot:
        start = time.monotonic()
        while not (app.runner.state == "paused" and app.frame is not None and app.frame.counters is not None):
            if time.monotonic() - start > 180:
                raise RuntimeError("the engine did not load")
            await pilot.pause(0.05)
        await pilot.press("p")
        while app.runner.state != "running":
            await pilot.pause(0.05)
        await asyncio.sleep(1.0)  # steady state

        # refresh rate and throughput, hands off
        r0, n0, t0 = app.render_count, app.runner.session.ops_done, time.perf_counter()
        await asyncio.sleep(seconds)
        r1, n1, t1 = app.render_count, app.runner.session.ops_done, time.perf_counter()
        hz = (r1 - r0) / (t1 - t0)
        ops = (n1 - n0) / (t1 - t0)

        lat = await key_latencies(app, pilot, keys, renders)
        state = app.runner.state
        await pilot.press("p")
    lat_ms = sorted(1000 * x for x in lat)
    return {
        "refresh_hz": hz,
        "ops_per_s": ops,
        "latency_ms_p50": statistics.median(lat_ms),
        "latency_ms_p95": lat_ms[max(0, int(round(0.95 * len(lat_ms))) - 1)],
        "latency_ms_max": lat_ms[-1],
        "keys": len(lat_ms),
        "engine_state_during_keys": state,
    }


async def key_latencies(app, pilot, keys: int, renders: list, until=None) -> list[float]:
    """Seconds from each mode key entering the input queue until the panes show that mode (up to `keys`
    presses, fewer if `until()` turns true)."""
    from .widgets import TlbPane

    lat = []
    order = ["1", "2", "3"]
    modes = {"1": "native", "2": "shadow", "3": "nested"}
    tlb = app.main_screen.query_one(TlbPane)
    for i in range(keys):
        if until is not None and until():
            break
        key = order[i % 3]
        if modes[key] == app.view_mode:
            key = order[(i + 1) % 3]
        want = modes[key]
        mark = len(renders)
        sent = time.perf_counter()
        app._driver.send_message(events.Key(key, key))
        while True:
            done = [t for t, mode in renders[mark:] if mode == want]
            if done and f"TLB · {want}" in str(tlb.border_title):
                lat.append(done[0] - sent)
                break
            if time.perf_counter() - sent > 5:
                lat.append(float("inf"))
                break
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.15)  # like a person: not faster than a few keys a second
    return lat


def timed_app(**kwargs):
    """An RviApp that notes (time, viewed mode) of each redraw once it is on the screen: when the compositor
    has painted what the frame changed (the terminal's write left out, as the tests' driver makes none)."""
    from .app import RviApp

    app = RviApp(**kwargs)
    renders: list[tuple[float, str]] = []
    drawn: list[str] = []  # frames drawn into the panes, not painted yet
    render, display = app._render_frame, app._display

    def timed_render(frame):
        render(frame)
        drawn.append(app.view_mode)

    def timed_display(screen, update):
        display(screen, update)
        if update is not None and drawn and not app._batch_count:
            now = time.perf_counter()
            renders.extend((now, mode) for mode in drawn)
            drawn.clear()

    app._render_frame, app._display = timed_render, timed_display
    return app, renders


async def measure_cold(keys: int = 30, size=(120, 40)) -> dict:
    """A fresh install's first minute: the first step, keys while compiling, the switch to compiled code."""
    import os
    import tempfile
    from pathlib import Path

    from rvi_tui.engine import hardware

    os.environ["RVI_TUI_KERNELS"] = "auto"
    tmp = tempfile.mkdtemp(prefix="rvi-tui-cold-")
    hardware.use_cache_dir(Path(tmp) / "kernels")
    created = time.perf_counter()
    app, renders = timed_app()
    async with app.run_test(size=size) as pilot:
        while app.frame is None:  # the first frame ("loading the simulator…"): a user sees the screen
            await asyncio.sleep(0.005)
        # as the terminal driver delivers it (Pilot.press would wait for an idle CPU, which the compiler denies):
        # at once, the step waits in the runner's queue until the load is done
        app._driver.send_message(events.Key("space", " "))
        while app.frame is None or app.frame.ops_done < 1:
            if time.perf_counter() - created > 120:
                raise RuntimeError("the first step did not arrive")
            await asyncio.sleep(0.005)
        first_step = time.perf_counter() - created
        kernels_then = app.frame.kernels
        app._driver.send_message(events.Key("p", "p"))
        await asyncio.sleep(1.0)
        lat = await key_latencies(app, pilot, keys, renders, until=lambda: hardware.status().compiled)
        while not hardware.status().compiled:
            if time.perf_counter() - created > 600:
                raise RuntimeError("the compiled kernels never arrived")
            await asyncio.sleep(0.1)
        compiled_after = time.perf_counter() - created
        ops_at_switch = app.runner.session.ops_done
        await asyncio.sleep(2.0)
        ops_after = app.runner.session.ops_done
        await pilot.press("p")
    hardware.stop_compiling()  # its cache was a throwaway: a compiler left running would load the next run
    lat_ms = sorted(1000 * x for x in lat) or [float("nan")]
    return {"first_step_s": first_step, "kernels_at_first_step": kernels_then, "keys_while_compiling": len(lat),
            "latency_ms_p50": statistics.median(lat_ms), "latency_ms_max": lat_ms[-1],
            "latency_ms_p95": lat_ms[max(0, int(round(0.95 * len(lat_ms))) - 1)],
            "compiled_after_s": compiled_after, "ops_at_switch": ops_at_switch,
            "ops_per_s_compiled": (ops_after - ops_at_switch) / 2.0}


BACKS_IN_A_ROW = 150  # at the last point: past the ops the view cache holds (runner.VIEW_EXTRA)


async def measure_travel(ops: int = 1_000_000, jobs: int = 255, size=(120, 40)) -> dict:
    """Going back, jumping and searching on a long kcompile run: key → redrawn screen, and memory.

    The run goes forward at full speed to `ops` (as a user running it would), pauses, then: `b` five times at
    the end and at six other ops reached by jumps (`g`) across the run, then BACKS_IN_A_ROW times from a last
    one; searches (one for a kind that never occurs in the view, so it reads every op; the next long nested
    walk from op 0; the previous exec from the end). Memory: the history's own bytes (checkpoints, tape,
    index) and the process's peak RSS."""
    import resource

    from rvi_tui.engine.timeline import EventKind

    app, renders = timed_app(workload_name="kcompile", workload_params={"jobs": jobs})
    app.runner.set_search(EventKind("exit"))  # no VM exit ever in native: a search reads the whole run

    async def until_shown(op: int, sent: float, limit: float = 600) -> float:
        while True:
            f = app.frame
            if f is not None and f.state in ("paused", "finished") and f.ops_done == op and renders \
                    and renders[-1][0] > sent:
                return renders[-1][0] - sent
            if time.perf_counter() - sent > limit:
                raise RuntimeError(f"op {op} never shown")
            await asyncio.sleep(0.001)

    def key(k: str, ch: str | None = None) -> float:
        sent = time.perf_counter()
        app._driver.send_message(events.Key(k, ch))
        return sent

    notices: list[tuple[float, str]] = []  # (when drawn, what a search or seek ended with)
    timed = app._render_frame

    def noting_render(frame):
        timed(frame)
        if frame.notice:
            notices.append((time.perf_counter(), frame.notice))

    app._render_frame = noting_render

    async def searched(sent: float) -> tuple[float, str]:
        """Seconds from `n` to the redraw that tells how the search ended, and what it said."""
        await wait(lambda: notices and notices[-1][0] > sent, "the search's end shown")
        return notices[-1][0] - sent, notices[-1][1]

    async def wait(cond, what: str, limit: float = 900) -> None:
        start = time.perf_counter()
        while not cond():
            if time.perf_counter() - start > limit:
                f = app.frame
                raise RuntimeError(f"{what}: not after {limit:.0f} s (runner {app.runner.state}, "
                                   f"{app.runner.error or ''} frame {f and f.state} at op {f and f.ops_done})")
            await asyncio.sleep(0.01)

    async with app.run_test(size=size) as pilot:
        await wait(lambda: app.runner.state == "paused" and app.frame is not None and app.frame.counters is not None,
                   "the engine loaded")
        t0 = time.perf_counter()
        app.runner.seek(ops)  # forward, in batch, as running would (stops early at the stream's end)
        await wait(lambda: app.frame.state in ("paused", "finished") and app.frame.ops_done > 0, "ran forward")
        forward_s = time.perf_counter() - t0
        end = app.runner.session.ops_done
        backs, in_a_row, jumps, searches = [], [], [], {}
        points = (end, end // 5, 9 * end // 10, 2 * end // 5, end // 10, 3 * end // 5, end // 2, 4 * end // 5)
        for i, target in enumerate(points):
            if app.frame.ops_done != target:
                sent = time.perf_counter()
                app.runner.seek(target)  # what g does
                jumps.append(await until_shown(target, sent))
            for n in range(BACKS_IN_A_ROW if i == len(points) - 1 else 5):
                here = app.frame.ops_done
                (in_a_row if i == len(points) - 1 else backs).append(await until_shown(here - 1, key("b", "b")))
                await asyncio.sleep(0.1)  # like a person holding b down: about 7 a second
        app.action_seek_start()
        await until_shown(0, time.perf_counter())
        await pilot.press("1")
        took, said = await searched(key("n", "n"))
        searches[f"VM exit in native, none in the whole run ({said})"] = took
        app.runner.set_search(EventKind("walk", min_refs=9))
        await pilot.press("3")
        took, said = await searched(key("n", "n"))
        searches[f"nested walk >= 9 refs ({said})"] = took
        app.runner.set_search(EventKind("os", os_op="exec"))
        app.runner.seek(end)
        await until_shown(end, time.perf_counter())
        took, said = await searched(key("N", "N"))
        searches[f"previous exec from the end ({said})"] = took
        timeline = app.runner.session.timeline
        history_mb = timeline.nbytes / 2**20
        checkpoints = len(timeline.checkpoints)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ms = lambda xs: sorted(1000 * x for x in xs)  # noqa: E731
    return {"ops": end, "forward_s": forward_s, "back_ms": ms(backs), "in_a_row_ms": ms(in_a_row),
            "in_a_row_from": points[-1], "jump_ms": ms(jumps),
            "search_s": searches, "history_mb": history_mb, "checkpoints": checkpoints, "peak_rss_mb": peak_mb}


def spread(ms: list[float]) -> str:
    """p50 / p95 / max of sorted milliseconds."""
    p95 = ms[max(0, int(round(0.95 * len(ms))) - 1)]
    return f"p50 {ms[len(ms) // 2]:.0f} ms, p95 {p95:.0f} ms, max {ms[-1]:.0f} ms"


def report_travel(r: dict) -> str:
    back, row, jump = r["back_ms"], r["in_a_row_ms"], r["jump_ms"]
    own = r["peak_rss_mb"] - r["history_mb"]
    lines = [f"kcompile run of {r['ops']:,} ops, run forward in {r['forward_s']:.1f} s",
             f"back one op (key → redrawn screen), {len(back)} presses, 5 at each of 7 ops: {spread(back)}",
             f"back one op, {len(row)} presses in a row from op {r['in_a_row_from']:,}: {spread(row)}",
             f"jump (g) across the run, {len(jump)} jumps: {spread(jump)}"]
    lines += [f"search, {what}: {s:.2f} s" for what, s in r["search_s"].items()]
    lines.append(f"memory for going back: {r['history_mb']:.1f} MB ({r['checkpoints']} checkpoints, tape, index); "
                 f"peak RSS of the process {r['peak_rss_mb']:.0f} MB, so {100 * r['history_mb'] / own:.0f}% on top "
                 f"of the other {own:.0f} MB")
    return "\n".join(lines)


def report_cold(result: dict) -> str:
    return (f"cold cache: first step on screen {result['first_step_s']:.2f} s after the app was created "
            f"(kernels: {result['kernels_at_first_step']})\n"
            f"key → pane latency while compiling, over {result['keys_while_compiling']} mode keys, the engine "
            f"running interpreted: p50 {result['latency_ms_p50']:.0f} ms, p95 {result['latency_ms_p95']:.0f} ms, "
            f"max {result['latency_ms_max']:.0f} ms\n"
            f"compiled kernels took over {result['compiled_after_s']:.1f} s after start, at op "
            f"{result['ops_at_switch']:,}; then {result['ops_per_s_compiled']:,.0f} ops/s")


def report(result: dict) -> str:
    return (f"UI refresh while running flat out: {result['refresh_hz']:.1f} Hz (cap 20)\n"
            f"key → pane latency over {result['keys']} mode keys: p50 {result['latency_ms_p50']:.0f} ms, "
            f"p95 {result['latency_ms_p95']:.0f} ms, max {result['latency_ms_max']:.0f} ms\n"
            f"engine throughput with the UI on screen: {result['ops_per_s']:,.0f} ops/s (3 modes in lockstep)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--keys", type=int, default=30)
    p.add_argument("--workload", default="kcompile")
    p.add_argument("--hz", type=float, default=None, help="pull rate while running (default: the app's, 10; max 20)")
    p.add_argument("--cold", action="store_true", help="start on an empty kernel cache, as a fresh install does")
    p.add_argument("--travel", action="store_true", help="back / jump / search timings and memory on a long run")
    p.add_argument("--ops", type=int, default=1_000_000, help="--travel: ops to run (default 1,000,000)")
    args = p.parse_args(argv)
    if args.travel:
        print(report_travel(asyncio.run(measure_travel(args.ops, jobs=max(1, args.ops // 3900)))))
        return 0
    if args.cold:
        print(report_cold(asyncio.run(measure_cold(args.keys))))
        return 0
    print(report(asyncio.run(measure(args.seconds, args.keys, args.workload, run_hz=args.hz))))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
