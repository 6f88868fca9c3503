"""Session files (``*.rvi.json``): a run's whole specification plus the view, to reopen exactly there.

The engine is deterministic, so the specification (workload and parameters,
or a trace and its SHA-256; preset, every ``--set``, page sizes, levels, seed)
and an op index fix every bit of state; the view adds the mode shown, the
event filter and the search kind. Reading never runs anything: ``load``
validates the file and returns a ``SessionFile`` that the app, ``report
--session`` (or any other front end) turns into a run.

    {"format": "rvi-tui session", "version": 1,
     "run": {"workload": "kcompile", "params": {"jobs": "50"}, "seed": 1, "trace": null,
             "trace_sha256": null, "trace_format": null, "ifetch": false, "skip_bad_lines": false,
             "preset": "modern", "sets": [], "guest_page": null, "host_page": null, "levels": null,
             "warmup_ops": 0},
     "view": {"op": 41210, "mode": "nested", "event_filter": ["op", "walk"],
              "search": {"kind": "walk", "min_refs": 20, "reason": "", "os_op": ""}},
     "note": "free text, shown when the session opens"}

A trace path is stored relative to the session file's folder. Problems are
``SessionError``s with one line naming what is wrong.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

from rvi_tui.workloads.traces import file_sha256

from .export import atomic_write
from .eventlog import KINDS
from .runner import MODES, RunSpec

FORMAT = "rvi-tui session"
VERSION = 1
SUFFIX = ".rvi.json"


class SessionError(Exception):
    """A session file that cannot be opened: one line naming the file and what is wrong."""


@dataclass(frozen=True)
class SessionView:
    op: int = 0
    mode: str = "nested"
    event_filter: tuple[str, ...] | None = None  # None: every kind
    search: dict | None = None  # EventKind fields: kind, min_refs, reason, os_op
    note: str = ""


@dataclass(frozen=True)
class SessionFile:
    spec: RunSpec
    view: SessionView
    warmup_ops: int = 0


def tour_paths() -> list[str]:
    """The guided tour's session files shipped with rvi-tui (README, "A guided tour")."""
    from importlib import resources

    folder = resources.files("rvi_tui.tui.tours")
    return sorted(str(folder / p.name) for p in folder.iterdir() if p.name.endswith(SUFFIX))


def dumps(spec: RunSpec, view: SessionView, path: str, trace_sha: str | None = None, warmup_ops: int = 0) -> str:
    """The file's text for a session saved at `path` (a trace is hashed now unless its hash is given)."""
    trace = None
    if spec.trace:
        trace = os.path.relpath(os.path.abspath(spec.trace), os.path.dirname(os.path.abspath(path)))
        trace_sha = trace_sha or file_sha256(spec.trace)
    run = {"workload": spec.workload, "params": dict(spec.params), "seed": spec.seed, "trace": trace,
           "trace_sha256": trace_sha if spec.trace else None, "trace_format": spec.trace_format,
           "ifetch": spec.ifetch, "skip_bad_lines": spec.skip_bad_lines, "preset": spec.preset,
           "sets": list(spec.sets), "guest_page": spec.guest_page, "host_page": spec.host_page,
           "levels": spec.levels, "warmup_ops": warmup_ops}
    v = asdict(view)
    v["event_filter"] = list(view.event_filter) if view.event_filter is not None else None
    note = v.pop("note")
    doc = {"format": FORMAT, "version": VERSION, "run": run, "view": v}
    if note:
        doc["note"] = note
    return json.dumps(doc, indent=2) + "\n"


def save(path: str, spec: RunSpec, view: SessionView, trace_sha: str | None = None, warmup_ops: int = 0) -> str:
    """Write the session atomically; returns the path written."""
    return atomic_write(path, dumps(spec, view, path, trace_sha, warmup_ops))


def load(path: str, check_trace: bool = True) -> SessionFile:
    """Read and validate a session file (and, with check_trace, that its trace is unchanged)."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise SessionError(f"{name}: no such session file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SessionError(f"{name}: cannot read it ({getattr(e, 'strerror', None) or e})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise SessionError(f"{name}: damaged session file (not JSON: {e.msg} at line {e.lineno})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise SessionError(f"{name}: not an rvi-tui session file (no \"format\": \"{FORMAT}\")")
    version = doc.get("version")
    if version != VERSION:
        raise SessionError(f"{name}: session file version {version!r} is not one this rvi-tui reads (it reads "
                           f"version {VERSION}); a newer rvi-tui wrote it?")
    try:
        spec, warmup = _spec(doc["run"], os.path.dirname(os.path.abspath(name)))
        view = _view(doc["view"], doc.get("note", ""))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        what = f"missing {e}" if isinstance(e, KeyError) else str(e)
        raise SessionError(f"{name}: damaged session file ({what})") from None
    if check_trace and spec.trace:
        if not os.path.isfile(spec.trace):
            raise SessionError(f"{name}: its trace {spec.trace} is not there any more")
        want = doc["run"].get("trace_sha256")
        have = file_sha256(spec.trace)
        if want != have:
            raise SessionError(f"{name}: the trace {spec.trace} changed since the session was saved "
                               f"(SHA-256 {str(want)[:12]}… then, {have[:12]}… now)")
    return SessionFile(spec, view, warmup)


def _spec(run: dict, folder: str) -> tuple[RunSpec, int]:
    trace = run.get("trace")
    if trace is not None:
        if not isinstance(trace, str) or not isinstance(run.get("trace_sha256"), str):
            raise ValueError("a trace needs its path and trace_sha256")
        trace = os.path.normpath(os.path.join(folder, trace))
    elif not isinstance(run.get("workload"), str):
        raise ValueError("run needs a workload or a trace")
    params = run.get("params") or {}
    if not isinstance(params, dict):
        raise ValueError("params must be an object")
    sets = run.get("sets") or []
    if not isinstance(sets, list) or not all(isinstance(x, str) for x in sets):
        raise ValueError("sets must be a list of key=value strings")
    levels = run.get("levels")
    spec = RunSpec(workload=None if trace else run["workload"], params=tuple((str(k), str(v)) for k, v in params.items()),
                   trace=trace, preset=str(run.get("preset", "modern")), sets=tuple(sets), seed=int(run.get("seed", 1)),
                   guest_page=run.get("guest_page"), host_page=run.get("host_page"),
                   levels=int(levels) if levels is not None else None, trace_format=run.get("trace_format"),
                   ifetch=bool(run.get("ifetch", False)), skip_bad_lines=bool(run.get("skip_bad_lines", False)))
    return spec, int(run.get("warmup_ops", 0))


def _view(view: dict, note) -> SessionView:
    op = int(view.get("op", 0))
    if op < 0:
        raise ValueError(f"op {op} is negative")
    mode = view.get("mode", "nested")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")
    kinds = view.get("event_filter")
    if kinds is not None:
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown event kinds {', '.join(map(str, unknown))}")
        kinds = tuple(kinds)
    search = view.get("search")
    if search is not None:
        from rvi_tui.engine.errors import EngineError

        try:
            event_kind(search).check()
        except EngineError as e:
            raise ValueError(str(e)) from None
    return SessionView(op, mode, kinds, search, str(note or ""))


def event_kind(search: dict):
    """The engine's EventKind for a view's search."""
    from rvi_tui.engine.timeline import EventKind

    return EventKind(str(search["kind"]), int(search.get("min_refs", 1)), str(search.get("reason", "")),
                     str(search.get("os_op", "")))


def search_dict(kind) -> dict | None:
    return None if kind is None else {"kind": kind.name, "min_refs": kind.min_refs, "reason": kind.reason,
                                      "os_op": kind.os_op}
