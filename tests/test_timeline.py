"""Going back, jumping and searching in a session, against independent truth: a fresh run stepped forward."""

from __future__ import annotations

import collections
import functools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from machine_helpers import machine_state
from rvi_tui.engine import config as C
from rvi_tui.engine.session import Session
from rvi_tui.engine.timeline import BUCKET, FINE, HALVE_MIN, NEAR, NEAR_SPAN, EventKind, Tape
from rvi_tui.tui.walks import split_walks
from rvi_tui.workloads import ops as O
from rvi_tui.workloads.registry import make_workload

WORKLOADS = {
    "kcompile": dict(jobs=2),
    "mmapchurn": dict(),
    "tlbstress": dict(footprint="8m", accesses="6k"),
    "webserver": dict(workers=2, footprint="1m", accesses="8k"),
}
PAGES = (("4k", "4k"), ("2m", "2m"), ("2m", "4k"))


@functools.lru_cache(maxsize=None)
def stream(workload: str) -> np.ndarray:
    w = make_workload(workload, seed=3, **WORKLOADS[workload])
    return O.concat(list(w.chunks()))[:3 * FINE + 300], w.warmup_ops


def config(pages):
    return C.load(overrides={"guest.page": pages[0], "host.page": pages[1], "guest.mem_gib": 1})


def fresh(workload: str, pages, k: int) -> Session:
    ops, warmup = stream(workload)
    s = Session([ops], config(pages), warmup_ops=min(warmup, len(ops)))
    s.run(k)
    return s


def assert_same(a: Session, b: Session) -> None:
    assert a.ops_done == b.ops_done and a.last_access == b.last_access and a.warmup_done == b.warmup_done
    for mode in a.modes:
        assert machine_state(a.machines[mode]) == machine_state(b.machines[mode]), mode


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workload=st.sampled_from(sorted(WORKLOADS)), pages=st.sampled_from(PAGES), data=st.data())
def test_back_and_jump_reach_the_state_of_a_fresh_run(workload, pages, data):
    """After running to the end and seeking back to k, jumping forward to k', and back one op: each state equals
    a fresh run's at that op (counters, every cache entry with its LRU age, tables, processes, shadow pages)."""
    ops, warmup = stream(workload)
    n = len(ops)
    s = Session([ops], config(pages), warmup_ops=min(warmup, n), history=True)
    s.run(n)
    for k in (data.draw(st.integers(0, n), label="back to"), data.draw(st.integers(0, n), label="jump to")):
        assert s.seek(k) == k
        assert_same(s, fresh(workload, pages, k))
    k = s.ops_done
    if k:
        s.seek(k - 1)
        assert_same(s, fresh(workload, pages, k - 1))


def test_going_back_op_after_op_replays_little_and_reaches_a_fresh_runs_state():
    """A jump leaves checkpoints every NEAR ops in the NEAR_SPAN ops below its target, so each op gone back from
    there restores one less than NEAR ops below; across those checkpoints, and past the ops they cover, each
    state is a fresh run's."""
    ops, warmup = stream("kcompile")
    s = Session([ops], config(PAGES[0]), warmup_ops=min(warmup, len(ops)), history=True)
    s.run(len(ops))
    k = len(ops) - 37
    assert k > FINE + NEAR_SPAN + NEAR
    assert s.seek(k) == k
    low = min(op for op in s.timeline.checkpoints if op > k - NEAR_SPAN)
    assert low - (k - NEAR_SPAN) <= NEAR
    ks = list(range(k - 1, k - 40, -1)) + list(range(k - 40, k - NEAR_SPAN - NEAR, -29))
    checked = {k - 1, k - 2, ks[-1], k - NEAR_SPAN + 3, (k - 1) // NEAR * NEAR, (k - 1) // NEAR * NEAR - 1}
    for op in sorted(set(ks) | checked, reverse=True):
        assert op - s.timeline.nearest(op).op < NEAR or op < low
        replayed = op - s.timeline.nearest(op).op
        s.seek(op)
        if replayed > HALVE_MIN and op >= low:  # it left one half-way: going back again replays half as far
            assert op - s.timeline.nearest(op).op <= (replayed + 1) // 2
        if op in checked:
            assert_same(s, fresh("kcompile", PAGES[0], op))


def test_a_jump_collects_its_garbage_and_a_step_back_does_not():
    """A jump's restore and replay leave ~10^5 objects; a full collection then fell on one of the steps back
    that follow (50-130 ms of a 150 ms budget). The jump, which has time to spare, collects them itself, and
    freezes the survivors (the restored machines among them), so that a later full collection does not scan
    them; what an earlier jump froze and has died since is collected."""
    import gc
    import weakref

    class Cycle:
        pass

    ops, warmup = stream("kcompile")
    s = Session([ops], config(PAGES[0]), warmup_ops=min(warmup, len(ops)), history=True)
    s.run(len(ops))
    dead = Cycle()
    dead.me = dead  # garbage that only a collection frees
    gone = weakref.ref(dead)
    gc.freeze()
    del dead
    full = lambda: gc.get_stats()[2]["collections"]  # noqa: E731
    before = full()
    s.seek(FINE // 2)  # a jump back across the run
    assert full() > before
    assert gone() is None
    tracked = {id(o) for o in gc.get_objects()}
    assert id(s.machines["native"]) not in tracked and id(s.machines["native"].mmu) not in tracked
    gc.disable()  # only the session's own collections count below
    try:
        before = full()
        s.seek(s.ops_done - 1)  # one op back: no collection of its own
        assert full() == before
    finally:
        gc.enable()


def test_stepping_after_going_back_replays_the_same_events():
    ops, _ = stream("kcompile")
    s = Session([ops], config(PAGES[0]), history=True)
    s.run(FINE + 50)
    s.seek(FINE - 10)
    again = [s.step() for _ in range(20)]
    f = fresh("kcompile", PAGES[0], FINE - 10)
    assert again == [f.step() for _ in range(20)]


def shows(kind: EventKind, evs: list, op) -> bool:
    """Whether one op's step-path events (of one mode) hold an event of `kind`."""
    names = [type(e).__name__ for e in evs]
    if kind.name == "walk":
        walks = [a for a in split_walks(evs) if a.fault is None and not a.assist]
        return any(a.refs >= kind.min_refs for a in walks)
    if kind.name == "exit":
        return any(n == "Exit" and (not kind.reason or e.reason == kind.reason) for n, e in zip(names, evs))
    if kind.name == "os":
        return kind.matches_op(op)
    return {"tlb-miss": "TlbFill" in names and "Translated" in names and any(
                n == "Translated" and e.via == "walk" for n, e in zip(names, evs)),
            "guest-pf": "GuestFault" in names, "npf": any(n == "Exit" and e.reason == "npf"
                                                         for n, e in zip(names, evs)),
            "sync": "ShadowSync" in names, "flush": "Flush" in names}[kind.name]


@functools.lru_cache(maxsize=None)
def truths(workload: str, pages) -> dict[tuple[EventKind, str], list[int]]:
    """(kind, mode) -> the ops with an event of that kind in that mode, for every kind of KINDS, from one run of
    the step path's event lists (1-based op numbers): one run serves every example of a workload."""
    ops, warmup = stream(workload)
    s = Session([ops], config(pages), warmup_ops=min(warmup, len(ops)))
    hits = collections.defaultdict(list)
    while (events := s.step()) is not None:
        for mode, evs in events.items():
            for kind in KINDS:
                if shows(kind, evs, s.last_op[0]):
                    hits[kind, mode].append(s.ops_done)
    return hits


KINDS = [EventKind("walk", min_refs=8), EventKind("guest-pf"), EventKind("npf"), EventKind("exit", reason="invlpg"),
         EventKind("sync"), EventKind("flush"), EventKind("os", os_op="fork"), EventKind("tlb-miss")]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workload=st.sampled_from(["kcompile", "mmapchurn"]), kind=st.sampled_from(KINDS), data=st.data())
def test_find_goes_to_the_next_and_previous_event_the_step_path_shows(workload, kind, data):
    mode = kind.mode(data.draw(st.sampled_from(["native", "shadow", "nested"]), label="viewed"))
    hits = truths(workload, PAGES[0])[kind, mode]
    ops, _ = stream(workload)
    s = Session([ops], config(PAGES[0]), history=True)
    s.run(data.draw(st.integers(0, len(ops)), label="run first"))  # part indexed, part not
    assert_finds(s, kind, mode, data.draw(st.integers(0, s.ops_done), label="from"), hits)


def assert_finds(s: Session, kind: EventKind, mode: str, start: int, hits: list[int]) -> None:
    """From op `start`, find goes to the next and the previous of `hits` (or stays put if there is none)."""
    s.seek(start)
    for forward in (True, False):
        g = s.find(kind, mode, forward)
        try:
            while True:
                next(g)
        except StopIteration as stop:
            found = stop.value
        want = [h for h in hits if h > start] if forward else [h for h in hits if h < start]
        assert found == ((want[0] if forward else want[-1]) if want else None)
        assert s.ops_done == (found if found is not None else start)
        s.seek(start)


def test_os_op_searches_read_the_tape_and_run_on_past_it():
    """Next / previous OS op of one sort, and of any sort, from ops behind, at and past what has run."""
    ops, _ = stream("kcompile")
    for kind in (EventKind("os", os_op="fork"), EventKind("os", os_op="exec"), EventKind("os")):
        hits = [i + 1 for i, op in enumerate(ops) if kind.matches_op(op)]
        s = Session([ops], config(PAGES[0]), modes=("native",), history=True)
        s.run(FINE)
        for start in (0, FINE // 2, FINE, len(ops) - 5):
            assert_finds(s, kind, "native", start, hits)


def test_a_search_that_finds_nothing_stays_put():
    ops, _ = stream("kcompile")
    s = Session([ops], config(PAGES[0]), modes=("native",), history=True)
    s.run(500)
    g = s.find(EventKind("npf"), "native", True)  # native has no nested page faults
    try:
        while True:
            next(g)
    except StopIteration as stop:
        assert stop.value is None
    assert s.ops_done == 500


def test_tape_gives_back_every_op_and_counts_accesses():
    ops, _ = stream("kcompile")
    t = Tape()
    for i in range(0, len(ops), 999):
        t.append(ops[i : i + 999])
    assert len(t) == len(ops) and (t.slice(0, len(ops)) == ops).all()
    assert (t.slice(4000, 9000) == ops[4000:9000]).all()
    for op in (0, 1, 5000, len(ops)):
        assert t.accesses_before(op) == int(np.count_nonzero(ops[:op]["kind"] == O.ACCESS))


def test_memory_stays_under_the_cap_by_thinning_coarse_checkpoints():
    ops, _ = stream("kcompile")
    s = Session([ops], config(PAGES[0]), history=True)
    s.timeline.max_bytes = 1  # everything over the cap: only op 0 stays coarse
    s.timeline.coarse = BUCKET  # many coarse ones to thin
    s.run(len(ops))
    coarse = [k for k, c in s.timeline.checkpoints.items() if c.kind == "coarse"]
    assert coarse == [0]
    s.seek(FINE + 3)
    assert_same(s, fresh("kcompile", PAGES[0], FINE + 3))
