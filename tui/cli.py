"""The `rvi-tui` command: the live app by default, and the headless commands.

    rvi-tui [options]                  the terminal UI
    rvi-tui report [options]           one workload, one or all modes: a table or --json
    rvi-tui study [options]            workloads x modes x page sizes (the VMware study's table)
    rvi-tui bench [--trace FILE]       engine throughput (accesses/s), against pycachesim
    rvi-tui record [-o FILE] -- CMD    a real program's memory trace through Valgrind lackey
    rvi-tui serve [options]            the app in web browsers, one app per tab (the `web` extra)

A user mistake (a bad option value, a malformed trace, a missing file or
program) is one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import signal
import sys

from ..engine import config as C
from ..engine.errors import ConfigError, EngineError
from ..workloads.errors import RecordError, TraceError, WorkloadError
from ..workloads.units import parse_count, parse_size
from . import render

USER_ERRORS = (ConfigError, EngineError, WorkloadError, TraceError, RecordError, OSError)


def _session_error():
    from .sessionfile import SessionError

    return SessionError
MODES = ("native", "shadow", "nested")


class UsageError(Exception):
    pass


def _add_machine_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("machine")
    g.add_argument("--preset", default=C.DEFAULT_PRESET, help=f"cost/geometry preset ({', '.join(C.preset_names())})")
    g.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set tlb.l2.entries=1536 (repeatable; see --show-config)")
    g.add_argument("--guest-page", choices=("4k", "2m", "1g"), help="largest guest page for large mappings")
    g.add_argument("--host-page", choices=("4k", "2m", "1g"), help="host pages backing guest memory")
    g.add_argument("--levels", type=int, choices=(4, 5), help="paging levels, guest and host (5 = LA57)")


def _add_workload_options(p: argparse.ArgumentParser, default: str) -> None:
    g = p.add_argument_group("workload")
    src = g.add_mutually_exclusive_group()
    src.add_argument("--workload", "-w", default=None, help=f"built-in workload (default {default}; --list-workloads)")
    src.add_argument("--trace", "-t", action="append",
                     help="a trace: Valgrind lackey, plain text addresses or .npy ops (.gz ok), from a file, a "
                          "pipe or - (stdin); repeat it to run several traces as processes of one guest, "
                          "round-robin")
    g.add_argument("--format", dest="fmt", choices=("lackey", "text", "npy"), help="trace format (default: detected)")
    g.add_argument("--ifetch", action="store_true", help="replay instruction fetches of a lackey trace too")
    g.add_argument("--skip-bad-lines", action="store_true", help="skip malformed trace lines and count them")
    g.add_argument("--slice", default="10k", help="ops per time slice when several traces share the guest")
    g.add_argument("--footprint", help="workload footprint, e.g. 64m, 1g")
    g.add_argument("--accesses", help="number of accesses, e.g. 1m")
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="another workload parameter, e.g. --param jobs=50 (repeatable)")
    g.add_argument("--list-workloads", action="store_true", help="list the built-in workloads and exit")


def _add_app_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mode", choices=MODES, default="nested", help="mode shown first in the app")
    p.add_argument("--no-mouse", action="store_true", help="leave the mouse to the terminal (copy/paste)")
    p.add_argument("--session", metavar="FILE", help="reopen a saved session (*.rvi.json) at its op and view")
    p.add_argument("--data", action="append", metavar="DIR",
                   help="a directory whose traces and session files the workload picker lists and `rvi-tui serve` "
                        "offers (repeatable)")


class OneLineParser(argparse.ArgumentParser):
    """A bad option is one line, like every other user mistake; --help shows the usage."""

    def error(self, message: str):
        raise UsageError(f"{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="rvi-tui", description=__doc__.split("\n\n")[0],
                           formatter_class=argparse.RawDescriptionHelpFormatter,
                           epilog="Run `rvi-tui COMMAND --help` for a command's options.")
    _add_app_options(parser)
    parser.add_argument("--export-dir", metavar="DIR", help="where `e` writes its exports (default: the current "
                                                            "directory)")
    _add_machine_options(parser)
    _add_workload_options(parser, "kcompile")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    rep = sub.add_parser("report", help="simulate one workload and print its costs per mode")
    rep.add_argument("--mode", choices=MODES + ("all",), default="all")
    rep.add_argument("--json", action="store_true", help="one JSON object on stdout")
    rep.add_argument("--warmup", default="auto", metavar="OPS",
                     help="ops run before counting starts (state kept, counters reset); 'auto' = the "
                          "workload's own initialisation phase, if it declares one (tlbstress)")
    rep.add_argument("--show-config", action="store_true",
                     help="print the effective config, each value with its source, and exit (--json: as JSON)")
    rep.add_argument("--compare", action="append", metavar="KEY=VALUE",
                     help="run again with this setting changed (a config key, guest.page, host.page or preset; "
                          "repeatable: all apply to the second run) and show both with the differences")
    rep.add_argument("--session", metavar="FILE",
                     help="the counters of a saved session (*.rvi.json) at its op; its run replaces the run options")
    _add_machine_options(rep)
    _add_workload_options(rep, "kcompile")

    st = sub.add_parser("study", help="a grid of cells: workloads x swept settings x seeds, all modes in each "
                                      "(default: the VMware study's table)")
    st.add_argument("--workloads", help="comma-separated built-ins, each with its parameters as "
                                        "name:key=value,key=value (default: the study's four)")
    st.add_argument("--trace", "-t", action="append", default=[],
                    help="a trace file, or a directory of them, as more workloads (repeatable)")
    st.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2,...",
                    help="an axis: any config key, guest.page, host.page, guest.levels, or preset (repeatable; "
                         "default: guest/host pages 4k/4k and 2m/2m)")
    st.add_argument("--modes", default="native,shadow,nested", help="modes to report (native always runs)")
    st.add_argument("--seeds", type=int, default=1, help="repeat every cell with this many seeds from --seed")
    st.add_argument("--seed", type=int, default=1)
    st.add_argument("--warmup", default="auto", metavar="OPS", help="as for report (default auto)")
    st.add_argument("--jobs", "-j", type=int, help="worker processes (default: every core)")
    st.add_argument("--scheduler", metavar="tcp://HOST:8786", help="run the cells on this Dask cluster")
    st.add_argument("-o", "--output", help="write the results: .csv (one row per cell and mode) or .json")
    st.add_argument("--resume", action="store_true", help="skip the cells --output already holds")
    st.add_argument("--plot", metavar="FILE", help="draw the results as a chart: .svg or .png")
    st.add_argument("--json", action="store_true", help="the results as JSON on stdout")
    st.add_argument("--preset", default=C.DEFAULT_PRESET)
    st.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")

    be = sub.add_parser("bench", help="engine throughput per mode (accesses/s), against pycachesim")
    be.add_argument("--trace", help="also time this trace (parsed before timing)")
    be.add_argument("--format", dest="fmt", choices=("lackey", "text", "npy"))
    be.add_argument("--accesses", default="10m", help="accesses in each synthetic stream (default 10m)")
    be.add_argument("--footprint", default="1g", help="bytes the random stream spans (default 1g)")
    be.add_argument("--modes", default="native,shadow,nested")
    be.add_argument("--model", choices=("walks", "full"), default="walks",
                    help="walks: TLBs and walks only, references at one flat latency, as pycachesim "
                         "simulates no data caches (default); full: the preset's data-cache model too")
    be.add_argument("--preset", default=C.DEFAULT_PRESET)
    be.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="config overrides on top of the bench's TLB geometry and model")
    be.add_argument("--repeat", type=int, default=1, metavar="N",
                    help="time every column N times, interleaved, and keep each one's fastest run (default 1): "
                         "on a shared machine one run's ratios move by a quarter or more")
    be.add_argument("--json", action="store_true")
    be.add_argument("--sweep", action="store_true",
                    help="time a 48-cell sweep serially, in 2 worker processes and on a 2-worker Dask LocalCluster")
    be.add_argument("--compile", action="store_true",
                    help="time a cold compile of the simulator kernels in a throwaway cache: seconds and peak RSS")

    rc = sub.add_parser("record", help="record a program's memory trace with Valgrind lackey")
    rc.add_argument("-o", "--output", default="trace.lackey.gz", help="output file (default trace.lackey.gz)")
    rc.add_argument("cmd", nargs=argparse.REMAINDER, help="-- COMMAND ARGS...")

    sv = sub.add_parser("serve", help="serve the app to web browsers, one app per tab (needs the web extra)",
                        description="Serve the app to web browsers: each tab runs its own app, started with the "
                                    "options below. Links: /?workload=NAME, /?trace=KEY, /?session=KEY; "
                                    "/links lists them.")
    g = sv.add_argument_group("serving")
    g.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)")
    g.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    g.add_argument("--max-sessions", type=int, metavar="N",
                   help="apps running at once; a tab beyond them gets a busy page (default: what this machine's "
                        "memory holds)")
    g.add_argument("--idle-timeout", type=float, default=30.0, metavar="MINUTES",
                   help="end a tab's app after this many minutes without a key (default 30; 0 = never)")
    _add_app_options(sv)
    _add_machine_options(sv)
    _add_workload_options(sv, "kcompile")
    return parser


# What picks the run: a link to another workload or file replaces these options of `rvi-tui serve`.
SOURCE_OPTIONS = ("workload", "trace", "fmt", "param", "footprint", "accesses", "session")
NOT_PASSED_ON = ("help", "command", "list_workloads",
                 "export_dir")  # a served tab's exports are downloads, never files on the server


def app_argv(args, *, source: bool) -> list[str]:
    """The `rvi-tui` options in `args` (a parsed `serve` command line) as arguments of the app: those that pick
    the run if `source`, the others (machine, mode, data directories) if not. Every option of the app's own
    parser is covered, so an option added to the app reaches served tabs without a change here."""
    argv: list[str] = []
    for action in build_parser()._actions:
        dest = action.dest
        if not action.option_strings or dest in NOT_PASSED_ON or (dest in SOURCE_OPTIONS) != source:
            continue
        value = getattr(args, dest, action.default)
        if value == action.default:
            continue
        option = next(o for o in action.option_strings if o.startswith("--"))
        if action.nargs == 0:
            argv.append(option)
        elif isinstance(value, list):
            for item in value:
                argv += [option, str(item)]
        else:
            argv += [option, str(value)]
    return argv


def check_data_dirs(args) -> None:
    for directory in args.data or ():
        if not os.path.isdir(directory):
            raise UsageError(f"--data {directory}: not a directory")


# --- shared option handling ------------------------------------------------------------------
def _page_overrides(args) -> dict:
    """The config values the page-size and level options set."""
    overrides = {}
    if getattr(args, "guest_page", None):
        overrides["guest.page"] = args.guest_page
    if getattr(args, "host_page", None):
        overrides["host.page"] = args.host_page
    if getattr(args, "levels", None):
        overrides["guest.levels"] = overrides["host.levels"] = args.levels
    return overrides


def load_config(args) -> C.Config:
    return C.load(args.preset, args.sets, _page_overrides(args))


OPTION_OF = {"guest.page": "--guest-page", "host.page": "--host-page", "guest.levels": "--levels",
             "host.levels": "--levels"}


def workload_from(args, default: str, levels: int):
    """The workload the options name: traces (files, pipes or `-` for stdin) or a built-in with its parameters;
    ``levels`` is the guest's paging depth, which says which trace addresses are user addresses."""
    from ..workloads.registry import make_workload, open_trace, round_robin

    if args.trace:
        if args.trace.count("-") > 1:
            raise UsageError("--trace -: stdin can be read once, so name it once")
        traces = [open_trace(p, args.fmt, ifetch=args.ifetch, skip_bad_lines=args.skip_bad_lines, levels=levels)
                  for p in args.trace]
        return traces[0] if len(traces) == 1 else round_robin(traces, parse_count(args.slice))
    params = param_pairs(args.param)
    if args.footprint is not None:
        params["footprint"] = args.footprint
    if args.accesses is not None:
        params["accesses"] = args.accesses
    return make_workload(args.workload or default, seed=args.seed, **params)


def param_pairs(items) -> dict:
    """--param key=value options as a dict."""
    return C.key_value_pairs(items, "--param")


def stream_of(workload):
    """The workload's chunks, made in a child process on a spare core if making them is costly."""
    from ..workloads.child_stream import chunks_from_child

    if workload.costly_to_generate and (os.cpu_count() or 1) > 1:
        return chunks_from_child(workload)
    return workload.chunks()


def start_kernels(err) -> None:
    """The simulator kernels: compiled if the cache has them; else interpreted at once while a child process
    compiles them (the run takes them up as soon as they are ready), saying so once."""
    from ..engine import hardware

    hardware.start()
    if hardware.status().compiling:
        print("rvi-tui: compiling the simulator kernels in the background (once after an install: a first "
              "build in about 6 s, all of them in about 20 s); running them interpreted until then",
              file=err, flush=True)


def require_kernels(err) -> None:
    """Wait for the compiled kernels (a benchmark times those), with the seconds on a terminal."""
    from ..engine import hardware

    def progress(seconds: float) -> None:
        if err.isatty():
            print(f"\rrvi-tui: compiling the simulator kernels (once after an install): {seconds:.0f} s",
                  end="", file=err, flush=True)

    if not hardware.status().compiled and hardware.cache_complete() is None:
        print("rvi-tui: compiling the simulator kernels (once after an install, about 20 s)", file=err, flush=True)
    hardware.require_compiled(progress)
    if err.isatty():
        print("\r" + " " * 72 + "\r", end="", file=err, flush=True)


# --- commands ----------------------------------------------------------------------------------
def cmd_report(args, out, err) -> int:
    if args.session:
        return report_session(args, out, err)
    if args.list_workloads:
        from ..workloads.registry import workload_rows

        render.workload_list(workload_rows(), out)
        return 0
    config = load_config(args)
    if args.show_config:
        from ..engine.sources import config_sources, set_by

        sources = config_sources(config, set_by(args.sets, {key: OPTION_OF[key] for key in _page_overrides(args)}))
        if args.json:
            json.dump({"preset": config.preset, "values": dict(config), "sources": sources}, out, indent=2)
            out.write("\n")
        else:
            render.config_table(config, sources, out)
        return 0
    compare = _compare_sets(args.compare)
    if compare:  # checked before the first run, not after it
        C.load(compare.get("preset", args.preset), args.sets + [f"{k}={v}" for k, v in compare.items() if k != "preset"],
               {k: v for k, v in _page_overrides(args).items() if k not in compare})
    shown = MODES if args.mode == "all" else (args.mode,)
    start_kernels(err)
    meta, summary = _run_report(args, config, shown, err)
    if not compare:
        return print_report(args, meta, summary, out)
    config2 = C.load(compare.get("preset", args.preset), args.sets + [f"{k}={v}" for k, v in compare.items() if k != "preset"],
                     {k: v for k, v in _page_overrides(args).items() if k not in compare})
    meta2, summary2 = _run_report(args, config2, shown, err)
    label = " ".join(f"{k}={v}" for k, v in compare.items())
    if args.json:
        json.dump({**meta, "modes": summary, "compare": {"with": compare, **meta2, "modes": summary2}}, out, indent=2)
        out.write("\n")
    else:
        render.report(meta, summary, out)
        render.comparison(summary, summary2, label, out)
    return 0


def _compare_sets(items) -> dict[str, str]:
    return {k: v.strip() for k, v in C.key_value_pairs(items or (), "--compare", "KEY=VALUE").items()}


def _run_report(args, config, shown, err) -> tuple[dict, dict]:
    """One run of the workload the options name, on `config`: (meta, per-mode summary)."""
    from ..engine.report import summarize
    from ..engine.session import Session
    from ..workloads.count import OpCount

    workload = workload_from(args, "kcompile", config["guest.levels"])
    modes = tuple(m for m in MODES if m in shown or m == "native")  # native always runs: it is the baseline
    session = Session(stream_of(workload), config, modes)
    warmup = workload.warmup_ops if args.warmup == "auto" else parse_count(args.warmup)
    counted = 0
    length = OpCount(workload)  # asked for only by a progress bar, shown only on a terminal
    try:
        with render.progress(err, workload.name, total=length.get) as tick:
            if warmup:
                tick(session.run(warmup))
                session.reset_counters()
            while n := session.run(1 << 12):  # small steps: the progress line moves even on slow OS workloads
                tick(n)
                counted += n
    finally:
        length.close()
    if warmup and not counted:
        raise UsageError(f"--warmup {args.warmup}: the workload ends after {session.ops_done:,} ops, within its "
                         f"warm-up of {warmup:,} ops, so nothing is left to count; warm up for fewer ops")
    summary = summarize(session.counters(), shown)
    meta = {"workload": workload.name, "description": workload.description, "ops": session.ops_done,
            "warmup_ops": warmup,
            "preset": config.preset, "guest_page": config["guest.page"], "host_page": config["host.page"],
            "levels": config["guest.levels"]}
    skipped = getattr(workload, "skipped_lines", 0)
    if skipped:
        meta["skipped_lines"] = skipped
        print(f"rvi-tui: skipped {skipped} malformed trace lines", file=err)
    return meta, summary


def print_report(args, meta: dict, summary: dict, out) -> int:
    if args.json:
        json.dump({**meta, "modes": summary}, out, indent=2)
        out.write("\n")
    else:
        render.report(meta, summary, out)
    return 0


def _trace_files(items) -> list[str]:
    """--trace paths, a directory standing for the trace files in it (sorted)."""
    files = []
    for item in items:
        if os.path.isdir(item):
            inside = sorted(os.path.join(item, f) for f in os.listdir(item)
                            if not f.startswith(".") and os.path.isfile(os.path.join(item, f)))
            if not inside:
                raise UsageError(f"--trace {item}: a directory with no files in it")
            files += inside
        elif os.path.isfile(item):
            files.append(item)
        else:
            raise UsageError(f"--trace {item}: no such file or directory")
    return files


def report_session(args, out, err) -> int:
    """`report --session FILE`: the run a session file specifies, headless, to its op: the counters the app
    shows there (the warm-up counted as the app counts it)."""
    from ..engine.report import summarize
    from ..engine.session import Session
    from .sessionfile import load

    sf = load(args.session)
    spec, op = sf.spec, sf.view.op
    config = spec.config()
    workload = spec.make_workload(config["guest.levels"])
    shown = MODES if args.mode == "all" else (args.mode,)
    start_kernels(err)
    session = Session(workload.chunks(), config, MODES, warmup_ops=workload.warmup_ops)
    with render.progress(err, workload.name) as tick:
        while session.ops_done < op and (n := session.run(min(1 << 16, op - session.ops_done))):
            tick(n)
    if session.ops_done < op:
        raise UsageError(f"{args.session}: op {op:,} is past the end of its run ({session.ops_done:,} ops)")
    meta = {"session": args.session, "workload": workload.name, "description": workload.description,
            "op": session.ops_done, "ops": session.ops_done, "warmup_ops": workload.warmup_ops,
            "warmup_done": session.warmup_done, "preset": config.preset, "guest_page": config["guest.page"],
            "host_page": config["host.page"], "levels": config["guest.levels"]}
    summary = summarize(session.counters(), shown)
    return print_report(args, meta, summary, out)


def cmd_study(args, out, err) -> int:
    from ..engine import executors, sweep

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in MODES:
            raise UsageError(f"--modes: unknown mode {m!r} (native, shadow, nested)")
    if args.seeds < 1:
        raise UsageError(f"--seeds {args.seeds}: must be at least 1")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}: must be at least 1")
    if args.resume and not args.output:
        raise UsageError("--resume needs -o/--output: the file whose cells to keep")
    for path in (args.output, args.plot):
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise UsageError(f"{path}: no such directory")
    if args.output and not args.output.endswith((".csv", ".json")):
        raise UsageError(f"-o {args.output}: give a .csv or .json file")
    if args.plot:
        from . import charts

        charts.check_target(args.plot)
    workloads = sweep.parse_workloads(args.workloads) if args.workloads else None
    grid = sweep.build_grid(workloads, _trace_files(args.trace), sweep.parse_sweep(args.sweep), args.preset,
                            tuple(args.sets), args.seeds, args.seed, tuple(modes), args.warmup)
    done: dict[str, dict] = {}
    if args.resume and os.path.exists(args.output):
        done = {r["key"]: r for r in sweep.load_results(args.output) if not r["error"]}
    todo = [c for c in grid.cells if c.key not in done]
    if not args.scheduler:
        require_kernels(err)  # compile once here, before the workers look for the kernels
    jobs = args.jobs or executors.default_jobs()
    interrupted = False
    # a kill (SIGTERM) stops the workers and keeps the finished cells, as Ctrl-C does
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    with render.sweep_progress(err, len(grid.cells), len(done)) as bar:
        if args.scheduler:
            runner = executors.run_dask(todo, args.scheduler, bar.started)
        else:
            runner = executors.run_local(todo, jobs, bar.started)
        try:
            for result in runner:
                done[result["key"]] = result
                bar.finished(result)
                if args.output:
                    sweep.save_results(args.output, _in_grid_order(grid, done))
        except KeyboardInterrupt:
            interrupted = True
            runner.close()
        finally:
            signal.signal(signal.SIGTERM, previous)
    results = _in_grid_order(grid, done)
    if interrupted:
        kept = f"; kept in {args.output}" if args.output else ""
        print(f"rvi-tui study: interrupted: {len(results)} of {len(grid.cells)} cells finished{kept}", file=err)
    if args.json:
        json.dump({"preset": args.preset, "swept": list(grid.swept), "cells": results}, out, indent=1, default=str)
        out.write("\n")
    elif results:
        seeds = f" · seed {args.seed}" if args.seeds == 1 else f" · seeds {args.seed}–{args.seed + args.seeds - 1}"
        render.study(results, grid.swept, out, f" · preset {args.preset}{seeds}")
    if args.plot and results:
        from . import charts

        charts.save(args.plot, results, grid.swept, f"preset {args.preset}, seed{'s' if args.seeds > 1 else ''} "
                    f"{args.seed}" + (f"–{args.seed + args.seeds - 1}" if args.seeds > 1 else ""))
        print(f"rvi-tui study: chart written to {args.plot}", file=err)
    failed = sum(1 for r in results if r["error"])
    if failed:
        print(f"rvi-tui study: {failed} cell{'s' if failed > 1 else ''} failed (their errors are above"
              f"{' and in ' + args.output if args.output else ''})", file=err)
    return 130 if interrupted else (1 if failed else 0)


def _in_grid_order(grid, done: dict) -> list[dict]:
    return [done[c.key] for c in grid.cells if c.key in done]


def bench_sweep(args, out, err) -> int:
    """48 cells (the default study's kcompile and tlbstress cells x 2 page pairs x 12 seeds, a second or two
    each, as a study's cells are): serial, local workers, a LocalCluster."""
    from ..engine import executors, sweep

    cells = [(name, params) for name, params in sweep.default_workloads() if name in ("kcompile", "tlbstress")]
    grid = sweep.build_grid(cells, seeds=12)
    print(f"rvi-tui bench --sweep: {len(grid.cells)} cells, serially, then in 2 workers, then on a LocalCluster…",
          file=err, flush=True)
    r = executors.sweep_speedup(grid.cells, 2)
    if args.json:
        json.dump(r, out, indent=2)
        out.write("\n")
        return 0
    out.write(f"{r['cells']} cells: serial {r['serial_s']:.1f} s · 2 local workers {r['local_s']:.1f} s "
              f"({r['serial_s'] / r['local_s']:.2f}x, rows {'equal' if r['local_same'] else 'DIFFERENT'})")
    if "dask_s" in r:
        out.write(f" · 2-worker LocalCluster {r['dask_s']:.1f} s ({r['serial_s'] / r['dask_s']:.2f}x, rows "
                  f"{'equal' if r['dask_same'] else 'DIFFERENT'})")
    out.write(f" · {os.cpu_count()} CPUs\n")
    return 0 if r["local_same"] and r.get("dask_same", True) else 1


def turned(items: list, k: int) -> list:
    """bench's column order in round k: items with the first k % len(items) moved to the end."""
    k %= len(items)
    return items[k:] + items[:k]


def cmd_bench(args, out, err) -> int:
    import numpy as np

    from ..engine import bench
    from ..workloads.registry import make_workload, open_trace
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in MODES:
            raise UsageError(f"--modes: unknown mode {m!r}")
    n = parse_count(args.accesses)
    if n < 1:
        raise UsageError(f"--accesses {args.accesses}: a benchmark needs at least one access")
    footprint = parse_size(args.footprint)
    if footprint < 4096:
        raise UsageError(f"--footprint {args.footprint}: must be at least one page (4k)")
    if args.repeat < 1:
        raise UsageError(f"--repeat {args.repeat}: must be at least 1")
    config = C.load(args.preset, bench.BENCH_SETS + bench.MODELS[args.model] + tuple(args.sets))
    if args.compile:
        return bench_compile(args, out, err)
    require_kernels(err)
    if args.sweep:
        return bench_sweep(args, out, err)
    streams = {
        "random": (bench.random_stream(n, footprint), None, f"{n:,} uniform random reads over {args.footprint}"),
        "seq": (bench.sequential_stream(n), None, f"{n:,} sequential reads, 8-byte stride"),
    }
    real = make_workload("real-ls")
    parts = [c[c["kind"] == 0] for c in real.chunks()]
    ops = np.concatenate(parts)
    reps = max(1, n // max(1, len(ops)))
    streams["real-ls"] = (np.tile(ops["addr"].astype(np.int64), reps), np.tile(ops["rw"], reps),
                          f"shipped lackey trace of ls, replayed {reps}x ({reps * len(ops):,} accesses)")
    if args.trace:
        trace = open_trace(args.trace, args.fmt, levels=config["guest.levels"])
        parts = [c[c["kind"] == 0] for c in trace.chunks()]
        if not parts or not sum(len(p) for p in parts):
            raise UsageError(f"{args.trace}: no accesses to time")
        ops = np.concatenate(parts)
        streams["trace"] = (ops["addr"].astype(np.int64), ops["rw"], f"{args.trace} ({len(ops):,} accesses)")
    results = {"geometry": bench.geometry_label(config), "streams": {}, "repeat": args.repeat,
               "config": f"--model {args.model} --preset {args.preset}" + "".join(f" --set {x}" for x in args.sets)}
    for name, (addrs, rws, what) in streams.items():
        print(f"rvi-tui bench: {name}: {what}", file=err, flush=True)
        warmed = {mode: bench.warmed_machine(mode, config, addrs) for mode in modes}
        runs = {}
        for round_ in range(args.repeat):  # every column once a round, so that each samples the same minutes
            runs.setdefault("pycachesim", []).append(bench.pycachesim_baseline(config, addrs))
            runs.setdefault("tlb_only", []).append(bench.bare_baseline(config, addrs))
            # the modes' order turns each round, so that no mode is always timed right after the same kernel
            for mode in turned(modes, round_):
                machine = copy.deepcopy(warmed[mode]) if args.repeat > 1 else warmed[mode]
                runs.setdefault(mode, []).append(bench.time_machine(machine, addrs, rws))
                if mode in ("native", "nested"):  # the bare walkers read the tables the warm-up mapped
                    runs.setdefault("tlb_walk" if mode == "native" else "tlb_walk_2d", []).append(
                        bench.bare_baseline(config, addrs, machine))
        results["streams"][name] = {"what": what, **{key: bench.fastest(timed) for key, timed in runs.items()
                                                     if timed[0] is not None}}  # None: not installed, or no bare kernel
    pages = min(n, bench.FAULT_PAGES)
    print(f"rvi-tui bench: faults: {pages:,} first touches of scattered pages", file=err, flush=True)
    faults = bench.fault_stream(pages)
    fault_runs = [{mode: bench.time_faults(mode, config, faults) for mode in turned(modes, round_)}
                  for round_ in range(args.repeat)]
    results["faults"] = {"what": f"{pages:,} first touches of 4 KiB pages in a random order, half of them writes",
                         **{mode: bench.fastest([r[mode] for r in fault_runs], "faults_per_s") for mode in modes}}
    import tempfile

    from ..workloads.parse_bench import lackey_parse_rate, write_lackey_sample

    with tempfile.TemporaryDirectory() as tmp:
        sample = os.path.join(tmp, "sample.lackey")
        write_lackey_sample(sample, lines=min(n, 5_000_000))
        lines, seconds = lackey_parse_rate(sample)
    results["lackey_parse_lines_per_s"] = lines / seconds
    if args.json:
        flat = {"streams": {name: {k: (v["accesses_per_s"] if isinstance(v, dict) else v)
                                   for k, v in row.items() if k != "what"}
                            for name, row in results["streams"].items()},
                "us_per_fault": {mode: results["faults"][mode]["us_per_fault"] for mode in modes},
                "lackey_parse_lines_per_s": results["lackey_parse_lines_per_s"], "detail": results}
        json.dump(flat, out, indent=2)
        out.write("\n")
    else:
        render.bench(results, modes, out)
    return 0


def bench_compile(args, out, err) -> int:
    """`bench --compile`: the compiler child on an empty cache folder, timed from here (wall seconds; peak RSS
    of it and its stage processes together, compile_in_child), as a new install meets it; each stage's own
    record too."""
    import tempfile
    import time
    from pathlib import Path

    from ..engine import hardware
    from ..engine.compile_kernels import compile_in_child

    with tempfile.TemporaryDirectory(prefix="rvi-tui-compile-") as tmp:
        print("rvi-tui bench: compiling every kernel cold in a throwaway cache…", file=err, flush=True)
        folder = os.path.join(tmp, "kernels")
        start = time.perf_counter()
        code, peak_kb = compile_in_child(folder)
        seconds = time.perf_counter() - start
        stages = {stage: hardware.stage_record(stage, Path(folder)) for stage in hardware.STAGES}
    if code != 0 or not all(stages.values()):
        raise EngineError(f"the kernel compile failed (exit status {code})")
    result = {"compile_seconds": round(seconds, 2), "compile_peak_rss_mb": round(peak_kb / 1024, 1),
              "stages": {stage: {"seconds": r["seconds"], "peak_rss_mb": round(r["peak_rss_kb"] / 1024, 1)}
                         for stage, r in stages.items()}}
    if args.json:
        json.dump(result, out, indent=2)
        out.write("\n")
        return 0
    print(f"cold compile of every kernel: {seconds:.1f} s wall, {peak_kb / 1024:,.0f} MB peak RSS "
          "(its processes together: the compiler's peak plus those of the stages that run at once)", file=out)
    for stage, r in result["stages"].items():
        print(f"  {stage:8} {r['seconds']:6.1f} s  {r['peak_rss_mb']:7,.0f} MB", file=out)
    return 0


def cmd_record(args, out, err) -> int:
    from ..workloads.record import record_trace

    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        raise UsageError("record needs a command: rvi-tui record [-o FILE] -- CMD ARGS...")

    def progress(records: int, seconds: float) -> None:
        if err.isatty():
            print(f"\rrecording: {records:,} records, {seconds:.1f} s", end="", file=err, flush=True)

    result = record_trace(cmd, args.output, on_progress=progress)
    if err.isatty():
        print(file=err)
    if result.interrupted:
        print(f"rvi-tui: interrupted: kept the {result.records:,} records made in {result.seconds:.1f} s in "
              f"{result.out_path} (its last line says it was cut short)", file=err)
    else:
        print(f"wrote {result.records:,} records in {result.seconds:.1f} s to {result.out_path}", file=out)
    print(f"replay it: rvi-tui report --trace {result.out_path}", file=out)
    return 130 if result.interrupted else 0


def served_in_a_browser() -> bool:
    """Whether this app is one tab of `rvi-tui serve` (or of any textual-serve server): a browser draws it."""
    return "web_driver" in os.environ.get("TEXTUAL_DRIVER", "")


def checked_app_options(args) -> dict:
    """The app's run as RviApp's keyword arguments, once checked: a bad workload, parameter, setting or trace is
    a one-line error here, before a screen (or a served tab) is taken over."""
    from .app import check_args

    params = {k: v for k, v in (("footprint", args.footprint), ("accesses", args.accesses)) if v is not None}
    params.update(param_pairs(args.param))
    options = dict(workload_name=args.workload, workload_params=params, trace=args.trace[0] if args.trace else None,
                   mode=args.mode, preset=args.preset, sets=tuple(args.sets), seed=args.seed,
                   guest_page=args.guest_page, host_page=args.host_page, levels=args.levels, trace_format=args.fmt,
                   ifetch=args.ifetch, skip_bad_lines=args.skip_bad_lines)
    problem = check_args(**options)
    if problem:
        raise UsageError(problem)
    return options


def cmd_app(args, out, err) -> int:
    check_data_dirs(args)
    if args.export_dir is not None and not os.path.isdir(args.export_dir):
        raise UsageError(f"--export-dir {args.export_dir}: no such directory")
    if args.session:
        from .sessionfile import load

        session_file = load(args.session)  # a damaged file, an unknown version, a changed trace: one line, exit 2
        if not out.isatty() and not served_in_a_browser():
            raise UsageError("the app needs a terminal; for headless use: rvi-tui report --session FILE --json")
        from .app import run_app

        return run_app(session_file=session_file, export_dir=args.export_dir, data_dirs=tuple(args.data or ()),
                       mouse=not args.no_mouse)
    if args.list_workloads:
        from ..workloads.registry import workload_rows

        render.workload_list(workload_rows(), out)
        return 0
    load_config(args)  # a bad option is an error before the screen opens
    if args.trace and len(args.trace) > 1:
        raise UsageError("the app replays one trace; `rvi-tui report` takes several")
    options = checked_app_options(args)
    if not out.isatty() and not served_in_a_browser():
        raise UsageError("the app needs a terminal; for headless use see `rvi-tui report --help`")
    from .app import run_app

    return run_app(**options, export_dir=args.export_dir, data_dirs=tuple(args.data or ()), mouse=not args.no_mouse)


def cmd_serve(args, out, err) -> int:
    try:
        from . import serve
    except ImportError:
        raise UsageError("`rvi-tui serve` needs the web extra (textual-serve): pip install 'rvi-tui[web]' "
                         "(from a clone: pip install '.[web]')") from None
    if args.list_workloads:
        return cmd_app(args, out, err)
    check_data_dirs(args)
    if args.max_sessions is not None and args.max_sessions < 1:
        raise UsageError(f"--max-sessions {args.max_sessions}: must be at least 1")
    if not args.idle_timeout >= 0:
        raise UsageError(f"--idle-timeout {args.idle_timeout:g}: must be 0 (never) or more minutes")
    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port}: must be between 1 and 65535")
    load_config(args)
    if args.trace and len(args.trace) > 1:
        raise UsageError("the app replays one trace; `rvi-tui report` takes several")
    checked_app_options(args)  # a bad workload, parameter or trace is an error now, not in every tab
    if args.session:
        from .sessionfile import load

        load(args.session)
        args.session = os.path.abspath(args.session)
    # each tab's app runs in the server's own folder: paths given here must not depend on it
    args.trace = [os.path.abspath(t) for t in args.trace] if args.trace else None
    args.data = [os.path.abspath(d) for d in args.data] if args.data else None
    from ..engine import hardware

    hardware.start_compiling()  # on a fresh install: once, now, rather than in the first tab's app
    if hardware.status().compiling:
        print("rvi-tui serve: compiling the simulator kernels in the background (once after an install, about "
              "75 s); tabs opened meanwhile run them interpreted", file=out, flush=True)
    options = serve.ServeOptions(host=args.host, port=args.port,
                                 max_sessions=args.max_sessions or serve.default_max_sessions(),
                                 idle_timeout_s=args.idle_timeout * 60, app_options=tuple(app_argv(args, source=False)),
                                 default_source=tuple(app_argv(args, source=True)), data_dirs=tuple(args.data or ()))
    return serve.serve(options, out)


COMMANDS = {"report": cmd_report, "study": cmd_study, "bench": cmd_bench, "record": cmd_record, "serve": cmd_serve,
            None: cmd_app}


def main(argv=None, out=None, err=None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        args = build_parser().parse_args(argv)
        from ..engine import hardware

        hardware.configure()  # before anything imports numba: every compiled module caches in one keyed folder
        return COMMANDS[args.command](args, out, err)
    except BrokenPipeError:  # `rvi-tui report | head`: the reader left; nothing more to say
        sys.stdout = open(os.devnull, "w")
        return 0
    except (UsageError, _session_error(), *USER_ERRORS) as e:
        message = str(e) or type(e).__name__
        if isinstance(e, OSError) and e.filename:
            message = f"{e.filename}: {e.strerror}"
        print(f"rvi-tui: error: {message.splitlines()[0]}", file=err)
        return 2
    except KeyboardInterrupt:
        print("rvi-tui: interrupted", file=err)
        return 130


if __name__ == "__main__":
    sys.exit(main())
