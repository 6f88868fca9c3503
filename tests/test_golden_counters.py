"""Golden counters: every built-in workload's figures, held byte for byte to files made before the fault path
was made fast (issue 15: "nothing else moves"), and the walks model's before the miss path was.

Each case runs a built-in workload with small parameters through all three modes in lockstep, as
``rvi-tui report --json`` does (the same Session, warm-up and summary), and writes the report's JSON plus every
raw counter and every software event kind each machine noted. A stepped case also runs the step path and
keeps a digest of every event it returned. The text must equal ``tests/golden/<case>.json`` exactly.

The files were written from the code as it was before any speed work on the fault path (kcompile-cap and
random-recycle from main as it was when the lean compile came in: the config bounds shadow.max_pages from 64
since, so the cases at a cap of 12 went); the `-flat` cases (data caches off), from main as it was before
engine/fast_miss.py. A change that moves a figure fails here. To write them again after a change that is meant to move figures (and say so in the
change): ``RVI_TUI_WRITE_GOLDEN=1 python -m pytest tests/test_golden_counters.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from rvi_tui.engine import config as C
from rvi_tui.engine.report import summarize
from rvi_tui.engine.session import ALL_MODES, Session
from rvi_tui.workloads.registry import make_workload

GOLDEN = Path(__file__).parent / "golden"
WRITE = os.environ.get("RVI_TUI_WRITE_GOLDEN") == "1"

# name: (workload, its parameters, preset, --set items, page/level overrides, warm-up ops or "auto", ops stepped)
CASES = {
    "seq": ("seq", dict(footprint=1 << 20, accesses=20_000), "modern", (), {}, 0, 0),
    "stride": ("stride", dict(footprint=8 << 20, accesses=20_000), "modern", (), {}, 0, 0),
    "random": ("random", dict(footprint=256 << 20, accesses=8_000), "modern", (), {}, 0, 0),
    "random-flat": ("random", dict(footprint=64 << 20, accesses=6_000), "modern", ("cache.enabled=false",), {}, 0, 0),
    "random-2m": ("random", dict(footprint=1 << 30, accesses=20_000), "modern", (),
                  {"guest.page": "2m", "host.page": "2m"}, 0, 0),
    "random-5level": ("random", dict(footprint=64 << 20, accesses=6_000), "modern", (),
                      {"guest.levels": 5, "host.levels": 5}, 0, 0),
    "zipf": ("zipf", dict(footprint=16 << 20, accesses=10_000), "modern", (), {}, 0, 0),
    "chase": ("chase", dict(footprint=1 << 20, accesses=20_000), "modern", (), {}, 0, 0),
    "phases": ("phases", dict(footprint=4 << 20, accesses=30_000), "modern", (), {}, 0, 0),
    "multi": ("multi", dict(footprint=1 << 20, accesses=15_000, slice=1000), "modern", (), {}, 0, 0),
    "kcompile": ("kcompile", dict(jobs=4), "modern", (), {}, 0, 0),
    "kcompile-2m": ("kcompile", dict(jobs=3), "modern", (), {"guest.page": "2m", "host.page": "2m"}, 0, 0),
    "kcompile-2m-4k": ("kcompile", dict(jobs=3), "modern", (), {"guest.page": "2m", "host.page": "4k"}, 0, 0),
    "kcompile-1g-2m": ("kcompile", dict(jobs=2), "modern", (), {"guest.page": "1g", "host.page": "2m"}, 0, 0),
    "kcompile-sync": ("kcompile", dict(jobs=3), "modern", ("shadow.unsync=false", "shadow.flooding=false"), {}, 0, 0),
    "kcompile-nopcid": ("kcompile", dict(jobs=3), "modern", ("guest.pcid=false",), {}, 0, 0),
    "kcompile-cap": ("kcompile", dict(jobs=3), "modern", ("shadow.max_pages=64", "shadow.prefetch=1"), {}, 0, 0),
    "random-recycle": ("random", dict(footprint=256 << 20, accesses=8_000), "modern",
                       ("shadow.max_pages=64", "shadow.prefetch=1"), {}, 0, 0),
    "kcompile-barcelona": ("kcompile", dict(jobs=3), "barcelona-2008", (), {}, 0, 0),
    "kcompile-stepped": ("kcompile", dict(jobs=2), "modern", (), {}, 0, 2500),
    "webserver": ("webserver", dict(workers=4, footprint=1 << 20, accesses=10_000), "modern", (), {}, 0, 0),
    "webserver-2m": ("webserver", dict(workers=4, footprint=4 << 20, accesses=20_000), "modern", (),
                     {"guest.page": "2m", "host.page": "2m"}, 0, 0),
    "tlbstress": ("tlbstress", dict(footprint=16 << 20, accesses=30_000), "modern", (), {}, "auto", 0),
    "tlbstress-stepped": ("tlbstress", dict(footprint=4 << 20, accesses=1_000), "modern", (), {}, 0, 1500),
    "mmapchurn": ("mmapchurn", dict(accesses=6_000), "modern", (), {}, 0, 0),
    "mmapchurn-2m-4k": ("mmapchurn", dict(accesses=4_000), "modern", (), {"guest.page": "2m", "host.page": "4k"}, 0, 0),
    "real-ls": ("real-ls", dict(accesses=30_000), "modern", (), {}, 0, 0),
    # the walks model (data caches off), where misses take engine/fast_miss.py: written before it came in
    "chase-flat": ("chase", dict(footprint=16 << 20, accesses=30_000), "modern", ("cache.enabled=false",), {}, 0, 0),
    "kcompile-flat": ("kcompile", dict(jobs=3), "modern", ("cache.enabled=false",), {}, 0, 0),
    "kcompile-2m-4k-flat": ("kcompile", dict(jobs=2), "modern", ("cache.enabled=false",),
                            {"guest.page": "2m", "host.page": "4k"}, 0, 0),
    "webserver-flat": ("webserver", dict(workers=4, footprint=4 << 20, accesses=20_000), "modern",
                       ("cache.enabled=false", "tlb.l2.entries=1536", "tlb.l2.ways=12"), {}, 0, 0),
    "tlbstress-flat": ("tlbstress", dict(footprint=16 << 20, accesses=30_000), "modern",
                       ("cache.enabled=false", "tlb.l1_4k.entries=64", "tlb.l1_4k.ways=4", "tlb.l2.entries=1536",
                        "tlb.l2.ways=12"), {}, "auto", 0),
    "mmapchurn-flat": ("mmapchurn", dict(accesses=6_000), "modern", ("cache.enabled=false", "pwc.enabled=false"), {},
                       0, 0),
}


def _events_digest(events: list) -> dict:
    """How many events of each type the step path returned, and a SHA-256 of all of them in order."""
    counts: dict[str, int] = {}
    h = hashlib.sha256()
    for e in events:
        counts[type(e).__name__] = counts.get(type(e).__name__, 0) + 1
        h.update(repr(e).encode())
        h.update(b"\n")
    return {"counts": dict(sorted(counts.items())), "sha256": h.hexdigest()}


def golden_text(case: str) -> str:
    """The case's figures as JSON text (sorted keys, so the text is a function of the figures alone)."""
    name, params, preset, sets, overrides, warmup, stepped = CASES[case]
    workload = make_workload(name, **params)
    config = C.load(preset, sets, overrides)
    session = Session(workload.chunks(), config, ALL_MODES)
    warmup = workload.warmup_ops if warmup == "auto" else warmup
    out: dict = {}
    if stepped:
        events: dict[str, list] = {m: [] for m in ALL_MODES}
        for _ in range(stepped):
            for mode, evs in (session.step() or {}).items():
                events[mode].extend(evs)
        out["stepped_ops"] = stepped
        out["step_events"] = {m: _events_digest(evs) for m, evs in events.items()}
    if warmup:
        session.run(warmup)
        session.reset_counters()
    session.run_to_end()
    out["report"] = {"workload": workload.name, "ops": session.ops_done, "warmup_ops": warmup,
                     "modes": summarize(session.counters())}
    out["counters"] = session.counters()
    out["noted"] = {mode: dict(sorted(m.noted.items())) for mode, m in session.machines.items()}
    return json.dumps(out, indent=1, sort_keys=True) + "\n"


@pytest.mark.parametrize("case", list(CASES))
def test_counters_equal_the_golden_file(case):
    path = GOLDEN / f"{case}.json"
    text = golden_text(case)
    if WRITE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} is missing: write it with RVI_TUI_WRITE_GOLDEN=1 (see the module docstring)"
    assert text == path.read_text(), f"{case}: a figure moved (diff the JSON against {path})"


def test_every_builtin_workload_has_a_golden_case():
    from rvi_tui.workloads.registry import list_workloads

    assert {name for name, _ in list_workloads()} <= {spec[0] for spec in CASES.values()}
