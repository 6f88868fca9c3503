"""Exports: counters as JSON and a screenshot as SVG, each written atomically.

Written through ``workloads.atomic``: a temporary file in the destination
directory, renamed over the final name only when complete (a reader never
sees half a file), with the permissions the umask gives; a device, a FIFO or
a directory is never replaced, a symbolic link is written through.
"""

from __future__ import annotations

import json
import os
import re
import time

from rvi_tui.engine.report import summarize
from rvi_tui.workloads.atomic import atomic_output


def atomic_write(path: str, text: str) -> str:
    with atomic_output(path) as f:
        f.write(text.encode("utf-8"))
    return os.path.abspath(path)


def export_names(directory: str, workload: str, ops_done: int, stamp: str | None = None) -> tuple[str, str]:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", workload).strip("_")[:40] or "run"
    stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
    base = os.path.join(directory, f"rvi-tui-{safe}-op{ops_done}-{stamp}")
    json_path, svg_path = base + ".json", base + ".svg"
    n = 1
    while os.path.exists(json_path) or os.path.exists(svg_path):  # two exports in the same second
        n += 1
        json_path, svg_path = f"{base}-{n}.json", f"{base}-{n}.svg"
    return json_path, svg_path


def counters_document(counters: dict, *, workload: str, spec: dict, config: dict, ops_done: int,
                      total_ops: int | None, finished: bool, viewed: str, warmup_ops: int = 0,
                      warmup_done: bool = False) -> dict:
    """The export: the run, its config and every counter. ``warmup_ops``: the ops run before counting (the
    counters restart at its end, as `rvi-tui report` counts); ``counted_from`` says whether they have."""
    return {
        "rvi_tui_export": 1,
        "workload": workload,
        "run": spec,
        "config": config,
        "ops_done": ops_done,
        "total_ops": total_ops,
        "warmup_ops": warmup_ops,
        "counted_from": warmup_ops if warmup_done else 0,
        "finished": finished,
        "viewed_mode": viewed,
        "summary": summarize(counters),
        "counters": counters,
    }


def write_export(directory: str, document: dict, svg: str, workload: str) -> tuple[str, str]:
    json_path, svg_path = export_names(directory, workload, int(document.get("ops_done", 0)))
    json_path = atomic_write(json_path, json.dumps(document, indent=2, sort_keys=False) + "\n")
    svg_path = atomic_write(svg_path, svg)
    return json_path, svg_path
