"""Exports: counters as JSON and a screenshot as SVG, each written atomically.

A temporary file in the destination directory is written, flushed and
fsynced, then renamed over the final name with ``os.replace``: a reader never
sees a half-written file, and an interrupted export leaves no partial one.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time

from rvi_tui.engine.report import summarize


def atomic_write(path: str, text: str) -> str:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
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
                      total_ops: int | None, finished: bool, viewed: str) -> dict:
    return {
        "rvi_tui_export": 1,
        "workload": workload,
        "run": spec,
        "config": config,
        "ops_done": ops_done,
        "total_ops": total_ops,
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
