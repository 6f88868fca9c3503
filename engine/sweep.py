"""Sweeps: a study as a grid of cells, each one run of all modes on one workload and one config.

A cell is plain data (workload or trace, parameters, preset, config overrides, seed, warm-up), and
``run_cell`` is a pure function of it, so a grid runs the same cell by cell in this process, in local
worker processes, or on a Dask cluster (``engine.executors``). Results are tidy rows: one per cell and
mode, every axis value beside every counter `rvi-tui report --json` gives, flattened to dotted names.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import time
from dataclasses import asdict, dataclass, field, replace

from ..workloads.registry import make_workload, open_trace
from ..workloads.traces import file_sha256
from . import config as C
from . import malloc_thresholds
from .errors import ConfigError
from .report import summarize
from .session import ALL_MODES, Session
from .study import PAGE_CONFIGS, WORKLOADS

# Axes a sweep may vary besides config keys: the preset, and the seed (--seeds)
SPECIAL_AXES = ("preset",)


@dataclass(frozen=True)
class Cell:
    """One run: everything needed to reproduce it, and nothing else."""

    workload: str  # a built-in's name, or the trace's file name
    params: tuple[tuple[str, object], ...] = ()
    trace: str | None = None  # path of a trace file
    trace_sha256: str | None = None
    preset: str = C.DEFAULT_PRESET
    sets: tuple[str, ...] = ()  # KEY=VALUE config overrides, in order
    seed: int = 1
    modes: tuple[str, ...] = ALL_MODES
    warmup: str = "auto"  # "auto" (the workload's own initialisation phase) or a number of ops

    @property
    def key(self) -> str:
        """A stable identity: what --resume matches on."""
        d = asdict(self)
        d.pop("trace")  # a trace is the same cell wherever it lies
        return json.dumps(d, sort_keys=True, default=str)

    def axes(self) -> dict:
        """The cell's coordinates, as columns of its rows."""
        out = {"workload": self.workload, "trace_sha256": self.trace_sha256, "preset": self.preset,
               "seed": self.seed, "warmup": self.warmup}
        out.update({f"param.{k}": v for k, v in self.params})
        for item in self.sets:
            k, _, v = item.partition("=")
            out[k] = v
        return out

    def command(self) -> str:
        """The `rvi-tui report` command that gives this cell's figures."""
        parts = ["rvi-tui report", f"--trace {self.trace}" if self.trace else f"-w {self.workload}"]
        parts += [f"--param {k}={v}" for k, v in self.params]
        if self.preset != C.DEFAULT_PRESET:
            parts.append(f"--preset {self.preset}")
        parts += [f"--set {s}" for s in self.sets]
        if not self.trace:
            parts.append(f"--seed {self.seed}")
        if self.warmup != "auto":
            parts.append(f"--warmup {self.warmup}")
        return " ".join(parts)


class TraceMissing(Exception):
    """A worker lacks the trace at the cell's path (or has another file there): send it the bytes."""


# --- the grid ----------------------------------------------------------------------------------
@dataclass
class Grid:
    cells: list[Cell] = field(default_factory=list)
    swept: tuple[str, ...] = ()  # the axes that vary, in the order given


def parse_sweep(items) -> list[tuple[str, list[str]]]:
    """--sweep KEY=V1,V2,... items -> [(key, values)]; keys and values are checked against the config."""
    out = []
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        vals = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key or not vals:
            raise ConfigError(f"--sweep expects KEY=V1,V2,..., got {item!r}")
        if key == "preset":
            for v in vals:
                if v not in C.preset_names():
                    raise ConfigError(f"--sweep preset: unknown preset {v!r} (known: {', '.join(C.preset_names())})")
        else:
            for v in vals:
                C.load(sets=(f"{key}={v}",))  # one line naming the key or value if it is wrong
        if any(k == key for k, _ in out):
            raise ConfigError(f"--sweep {key}: given twice")
        out.append((key, vals))
    return out


def parse_workloads(text: str) -> list[tuple[str, tuple[tuple[str, object], ...]]]:
    """'kcompile:jobs=10,tlbstress:footprint=16g,spread=256,mmapchurn' -> [(name, params)]: an item with
    '=' and no ':' is one more parameter of the workload before it. Each is checked by building it."""
    out: list[tuple[str, list]] = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, colon, rest = item.partition(":")
        if colon or "=" not in item:
            out.append((name.strip(), []))
            item = rest
            if not item:
                continue
        elif not out:
            raise ConfigError(f"--workloads: {item!r} comes before any workload name")
        k, sep, v = item.partition("=")
        if not sep:
            raise ConfigError(f"--workloads: parameters are key=value, got {item!r}")
        out[-1][1].append((k.strip(), v.strip()))
    for name, params in out:
        try:
            make_workload(name, seed=1, **dict(params))  # unknown names and bad values fail here, in one line
        except Exception as e:  # noqa: BLE001 - a workload's own message, with the item it came from
            spec = name + (":" + ",".join(f"{k}={v}" for k, v in params) if params else "")
            raise ConfigError(f"--workloads {spec}: {e}") from None
    return [(name, tuple(params)) for name, params in out]


def default_workloads() -> list[tuple[str, tuple]]:
    return [(name, tuple(params.items())) for name, params, _ in WORKLOADS]


def build_grid(workloads=None, traces=(), sweeps=(), preset: str = C.DEFAULT_PRESET, sets=(), seeds: int = 1,
               seed: int = 1, modes=ALL_MODES, warmup: str = "auto") -> Grid:
    """Every combination of sources x swept values x seeds. Without --sweep, the VMware study's page-size
    pairs are the swept axis, as the default study has them."""
    sources: list[Cell] = []
    for name, params in (workloads if workloads is not None else ([] if traces else default_workloads())):
        sources.append(Cell(workload=name, params=tuple(params)))
    for path in traces:
        sources.append(Cell(workload=os.path.basename(path), trace=os.path.abspath(path),
                            trace_sha256=file_sha256(path)))
    C.load(preset, sets)  # the fixed overrides, checked once
    axes = list(sweeps) if sweeps else [("pages", [f"{g}/{h}" for g, h in PAGE_CONFIGS])]
    grid = Grid(swept=tuple(k for k, _ in axes))
    for source in sources:
        for combo in itertools.product(*(vals for _, vals in axes)):
            cell_sets, cell_preset = list(sets), preset
            for (key, _), value in zip(axes, combo):
                if key == "pages":
                    g, h = value.split("/")
                    cell_sets += [f"guest.page={g}", f"host.page={h}"]
                elif key == "preset":
                    cell_preset = value
                else:
                    cell_sets.append(f"{key}={value}")
            for s in range(seed, seed + seeds):
                grid.cells.append(replace(source, preset=cell_preset, sets=tuple(cell_sets), seed=s,
                                          modes=tuple(modes), warmup=warmup))
    return grid


# --- one cell ----------------------------------------------------------------------------------
def _open(cell: Cell, trace_bytes: bytes | None, levels: int):
    if cell.trace is None:
        return make_workload(cell.workload, seed=cell.seed, **dict(cell.params))
    path = cell.trace
    if trace_bytes is not None:  # sent by the driver: keep one copy per worker, named by content
        path = os.path.join(_trace_dir(), cell.trace_sha256 + "-" + os.path.basename(cell.trace))
        if not os.path.exists(path):
            from ..workloads.atomic import atomic_output

            with atomic_output(path) as f:
                f.write(trace_bytes)
    elif not os.path.isfile(path) or file_sha256(path) != cell.trace_sha256:
        raise TraceMissing(cell.trace)
    trace = open_trace(path, levels=levels)  # the paging depth says which addresses are user addresses
    trace.name = cell.workload
    return trace


def _trace_dir() -> str:
    import tempfile

    d = os.path.join(tempfile.gettempdir(), "rvi-tui-traces")
    os.makedirs(d, exist_ok=True)
    return d


def run_cell(cell: Cell, trace_bytes: bytes | None = None) -> dict:
    """Run one cell: {"key", "axes", "command", "seconds", "ops", "warmup_ops", "rows" (one per mode)}.
    A user mistake inside the cell is returned as "error", so the other cells go on. In a Dask worker glibc's
    heap thresholds are raised while the cell runs (engine.malloc_thresholds: a worker's own cost a cell a
    quarter more CPU)."""
    with malloc_thresholds.untrimmed():
        result = _run_cell(cell, trace_bytes)
        # The cell's machines are held in reference cycles (a mode and its machine, the guest OS and its write
        # hook) that only a full collection frees, and a worker makes few objects, so one came cells later: a
        # worker grew by 350 MB a tlbstress cell, to 2 GB. Collected now: 26 ms after three such cells.
        gc.collect()
    return result


def _run_cell(cell: Cell, trace_bytes: bytes | None) -> dict:
    from . import hardware

    if hardware.choice() == "interpreted" or hardware.jit_disabled():
        hardware.start()
    else:
        hardware.require_compiled()  # a sweep's cells are long: wait for compiled kernels (once per machine)
    start = time.perf_counter()
    result = {"key": cell.key, "axes": cell.axes(), "command": cell.command(), "error": None, "rows": []}
    try:
        config = C.load(cell.preset, cell.sets)
        workload = _open(cell, trace_bytes, config["guest.levels"])
        modes = tuple(m for m in ALL_MODES if m in cell.modes or m == "native")  # native is the baseline
        session = Session(workload.chunks(), config, modes)
        warmup = workload.warmup_ops if cell.warmup == "auto" else int(cell.warmup)
        if warmup:
            session.run(warmup)
            session.reset_counters()
        session.run_to_end()
    except TraceMissing:
        raise
    except Exception as e:  # noqa: BLE001 - one failing cell must not stop a sweep
        result["error"] = f"{type(e).__name__}: {e}"
        result["seconds"] = time.perf_counter() - start
        return result
    summary = summarize(session.counters(), cell.modes)
    result.update(seconds=time.perf_counter() - start, ops=session.ops_done, warmup_ops=warmup,
                  params=_effective_params(workload), summary=summary)
    for mode, s in summary.items():
        result["rows"].append({**result["axes"], "mode": mode, **C.flatten(s)})
    return result


def _effective_params(workload) -> dict:
    """The parameters the workload ran with, defaults included, for the caption of a table."""
    keys = ("footprint", "accesses", "spread", "jobs", "workers", "requests")
    return {k: getattr(workload, k) for k in keys if isinstance(getattr(workload, k, None), int)}


# --- results files -----------------------------------------------------------------------------
RESULTS_VERSION = 1


def tidy_rows(results: list[dict]) -> list[dict]:
    """One row per cell and mode (a failed cell: one row with its error), each naming its cell."""
    rows = []
    for r in results:
        base = {"cell": r["key"], "command": r["command"], "seconds": round(r.get("seconds", 0.0), 3),
                "ops": r.get("ops"), "warmup_ops": r.get("warmup_ops"), "error": r["error"]}
        if r["error"]:
            rows.append({**base, **r["axes"]})
        rows.extend({**base, **row} for row in r["rows"])
    return rows


def save_results(path: str, results: list[dict]) -> None:
    """Write results atomically: JSON (the cells as run) or CSV (tidy rows), by the file's extension."""
    import csv
    import io

    from ..workloads.atomic import atomic_output

    if path.endswith(".json"):
        data = json.dumps({"version": RESULTS_VERSION, "cells": results}, indent=1, default=str).encode()
    else:
        rows = tidy_rows(results)
        columns = list(dict.fromkeys(k for row in rows for k in row))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, columns)
        writer.writeheader()
        writer.writerows(rows)
        data = buf.getvalue().encode()
    with atomic_output(path) as f:
        f.write(data)


def load_results(path: str) -> list[dict]:
    """The cells a results file holds (for --resume): from JSON as written, from CSV rebuilt from its rows.
    A file that is not one of ours is an error naming it."""
    import csv

    try:
        if path.endswith(".json"):
            with open(path) as f:
                data = json.load(f)
            if not isinstance(data, dict) or data.get("version") != RESULTS_VERSION:
                raise ConfigError(f"{path}: not an rvi-tui results file of version {RESULTS_VERSION}")
            return data["cells"]
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, ValueError, KeyError) as e:
        raise ConfigError(f"{path}: cannot resume from it ({e})") from None
    cells: dict[str, dict] = {}
    for row in rows:
        if "cell" not in row:
            raise ConfigError(f"{path}: not an rvi-tui results file (no 'cell' column)")
        cell = cells.setdefault(row["cell"], {"key": row["cell"], "command": row["command"], "axes": {},
                                              "error": row["error"] or None, "rows": [],
                                              "seconds": float(row["seconds"] or 0)})
        if not row["error"]:
            cell["rows"].append({k: _number(v) for k, v in row.items()
                                 if k not in ("cell", "command", "seconds", "ops", "warmup_ops", "error")})
    return list(cells.values())


def _number(text: str):
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
