"""OS-activity and multi-process workloads follow the engine's op semantics.

``check_semantics`` replays a stream against a model of the guest OS: pid 1
exists and is current at the start, FORK leaves the parent current, an ACCESS
belongs to the current live process and lands inside one of its mappings (a
write only in a writable one), MMAP/MUNMAP ranges are page-aligned, and after
an EXIT the stream switches to a live process before the next access.
"""

from __future__ import annotations

import numpy as np
import pytest

from rvi_tui.workloads import ops
from rvi_tui.workloads.multiproc import round_robin
from rvi_tui.workloads.registry import WorkloadError, make_workload
from rvi_tui.workloads.traces import open_trace

SMALL = {
    "kcompile": dict(jobs=20),
    "webserver": dict(workers=4, accesses=60_000, footprint=1 << 20),
    "tlbstress": dict(footprint=16 << 20, accesses=50_000),
    "mmapchurn": dict(accesses=50_000),
    "multi": dict(accesses=50_000, slice=1000, footprint=1 << 20),
}


def stream(workload, chunk_ops=1 << 16) -> np.ndarray:
    return np.concatenate(list(workload.chunks(chunk_ops)))


def check_semantics(s: np.ndarray, *, mapped_only: bool = True) -> dict:
    """Assert the stream is valid for the engine; returns a few statistics about it."""
    live = {1}
    current = 1
    regions: dict[int, list[tuple[int, int, bool]]] = {1: []}
    born_from: dict[int, int] = {}
    stats = {"cow_candidates": 0, "switches": 0}
    boundaries = np.flatnonzero(s["kind"] != ops.ACCESS).tolist() + [len(s)]
    prev = 0
    for i in boundaries:
        seg = s[prev:i]
        if len(seg):
            assert current in live, f"access at op {prev} with no live current process"
            assert (seg["pid"] == current).all(), f"access by a process that is not current near op {prev}"
            assert (seg["rw"] <= ops.FETCH).all()
            if mapped_only:
                regs = sorted(regions[current])
                starts = np.array([r[0] for r in regs], dtype=np.uint64)
                ends = np.array([r[1] for r in regs], dtype=np.uint64)
                writable = np.array([r[2] for r in regs], dtype=bool)
                at = np.searchsorted(starts, seg["addr"], side="right") - 1
                assert (at >= 0).all(), f"access below every mapping near op {prev}"
                assert (seg["addr"] < ends[at]).all(), f"access outside the mappings near op {prev}"
                writes = seg["rw"] == ops.WRITE
                assert writable[at[writes]].all(), f"write to a read-only mapping near op {prev}"
                if current in born_from:
                    stats["cow_candidates"] += int(writes.sum())
        if i == len(s):
            break
        row = s[i]
        kind, pid, addr, arg = int(row["kind"]), int(row["pid"]), int(row["addr"]), int(row["arg"])
        if kind == ops.FORK:
            assert pid == current and pid in live and arg not in live and arg not in regions, f"bad fork at op {i}"
            live.add(arg)
            regions[arg] = list(regions[pid])
            born_from[arg] = pid
        elif kind == ops.SWITCH:
            assert pid in live, f"switch to dead pid {pid} at op {i}"
            current = pid
            stats["switches"] += 1
        elif kind == ops.EXEC:
            assert pid in live
            regions[pid] = []
            born_from.pop(pid, None)
        elif kind == ops.EXIT:
            assert pid in live
            live.remove(pid)
            if pid == current:
                current = None
        elif kind == ops.MMAP:
            assert pid in live and addr % 4096 == 0 and arg % 4096 == 0 and arg > 0
            assert all(addr + arg <= a or b <= addr for a, b, _ in regions[pid]), f"overlapping mmap at op {i}"
            regions[pid].append((addr, addr + arg, bool(row["flags"] & ops.MAP_WRITE)))
        elif kind == ops.MUNMAP:
            assert pid in live
            match = [r for r in regions[pid] if r[0] == addr and r[1] == addr + arg]
            assert match, f"munmap of an unmapped range at op {i}"
            regions[pid].remove(match[0])
        else:
            raise AssertionError(f"unknown kind {kind} at op {i}")
        prev = i + 1
    return stats


@pytest.mark.parametrize("name", list(SMALL))
def test_small_streams_are_valid_and_deterministic(name):
    w = make_workload(name, **SMALL[name])
    a = stream(w)
    check_semantics(a)
    assert len(a) == w.n_ops
    assert np.array_equal(a, stream(make_workload(name, **SMALL[name]), chunk_ops=777))
    assert not np.array_equal(a, stream(make_workload(name, **SMALL[name], seed=2)))


@pytest.mark.parametrize("name", ["kcompile", "webserver", "mmapchurn", "multi"])
def test_default_streams_are_valid_and_modest(name):
    w = make_workload(name)
    a = stream(w)
    check_semantics(a)
    assert 100_000 < len(a) <= 2_100_000


def test_exact_access_counts():
    for name, kw in SMALL.items():
        if "accesses" in kw:
            w = make_workload(name, **kw)
            a = stream(w)
            init = max(w.warmup_ops - 1, 0)  # tlbstress initialises its heap first: an mmap, then one write a page
            assert int((a["kind"] == ops.ACCESS).sum()) == kw["accesses"] + init, name


def test_kcompile_is_process_churn_with_cow():
    a = stream(make_workload("kcompile", jobs=30))
    stats = check_semantics(a)
    kinds = np.bincount(a["kind"], minlength=len(ops.KIND_NAMES))
    assert kinds[ops.FORK] == kinds[ops.EXEC] == kinds[ops.EXIT] == 30
    assert kinds[ops.MMAP] > 4 * 30 and kinds[ops.MUNMAP] > 0
    assert stats["cow_candidates"] > 0  # children write memory inherited over fork before exec
    assert (a[a["kind"] == ops.ACCESS]["rw"] == ops.FETCH).any()
    # every child maps small regions: tens to a few hundred KiB
    sizes = a[a["kind"] == ops.MMAP]["arg"]
    assert sizes.min() >= 4096 and sizes.max() <= 1 << 20


def test_webserver_switches_and_shares():
    a = stream(make_workload("webserver", **SMALL["webserver"]))
    stats = check_semantics(a)
    assert stats["switches"] >= 15
    assert stats["cow_candidates"] > 0  # workers write to the shared region and their own heaps
    assert set(np.unique(a["pid"][a["kind"] == ops.ACCESS])) == {1, 2, 3, 4, 5}


def test_mmu_versus_tlb_intensity():
    """OS ops per access and distinct pages per access separate the two classes."""
    def profile(name, **kw):
        a = stream(make_workload(name, **kw))
        acc = a[a["kind"] == ops.ACCESS]
        pages = len(np.unique(acc["addr"] >> np.uint64(12)))
        return (len(a) - len(acc)) / len(acc), pages / len(acc)

    tlb_os, tlb_pages = profile("tlbstress", accesses=100_000)
    for name, kw in (("kcompile", dict(jobs=20)), ("mmapchurn", dict(accesses=100_000))):
        os_rate, _ = profile(name, **kw)
        assert os_rate > 100 * max(tlb_os, 1e-5), name
    assert tlb_pages > 0.3  # nearly every access goes to a page not seen recently


def test_multi_processes():
    w = make_workload("multi", procs=3, accesses=9_000, slice=1_000, footprint=1 << 20, pattern="zipf")
    a = stream(w)
    check_semantics(a)
    acc = a[a["kind"] == ops.ACCESS]
    assert set(np.unique(acc["pid"])) == {2, 3, 4}
    assert np.bincount(acc["pid"]).tolist()[2:] == [3000, 3000, 3000]
    head = [ops.describe(r) for r in a[:4]]
    assert head == ["fork pid 1 -> 2", "switch pid 2", "exec pid 2", "mmap 0x7f0000000000+0x100000 (pid 2)"]
    # the child runs its first slice (the mmap and 999 accesses), then pid 1 forks the next one
    assert (a[4:1003]["kind"] == ops.ACCESS).all()
    assert [ops.describe(r) for r in a[1003:1005]] == ["switch pid 1", "fork pid 1 -> 3"]
    with pytest.raises(WorkloadError):
        make_workload("multi", pattern="nope")


def test_round_robin_of_traces(tmp_path):
    paths = []
    for k in range(3):
        p = tmp_path / f"t{k}.txt"
        p.write_text("".join(f"W 0x{0x10000 * (k + 1) + 8 * i:x}\n" for i in range(25)))
        paths.append(p)
    w = round_robin([open_trace(p) for p in paths], 10)
    assert w.n_ops is None  # text traces have no known length before a pass
    a = stream(w, chunk_ops=7)
    check_semantics(a, mapped_only=False)
    assert w.n_ops == len(a)  # ... and do after one
    acc = a[a["kind"] == ops.ACCESS]
    assert len(acc) == 75
    for k, pid in enumerate((2, 3, 4)):
        mine = acc[acc["pid"] == pid]["addr"]
        assert np.array_equal(mine, 0x10000 * (k + 1) + 8 * np.arange(25))
    kinds = a["kind"]
    assert (kinds == ops.EXIT).sum() == 3 and a[-1]["kind"] == ops.SWITCH and a[-1]["pid"] == 1


def test_round_robin_counts_match(tmp_path):
    ws = [make_workload("seq", accesses=n, footprint=1 << 16) for n in (5, 40, 13)]
    w = round_robin(ws, 4)
    assert len(stream(w)) == w.n_ops


def test_round_robin_rejects_multiprocess_workloads():
    w = round_robin([make_workload("kcompile", jobs=2)], 100)
    with pytest.raises(WorkloadError, match="single-process"):
        stream(w)


def test_tlbstress_spread_uses_one_scattered_page_per_slot():
    w = make_workload("tlbstress", footprint=64 << 20, spread=256, accesses=5000, seed=3)
    stream = ops.concat(list(w.chunks()))
    acc = stream[stream["kind"] == ops.ACCESS]
    pages = np.unique((acc["addr"] - w.base) // 4096)
    assert len(pages) == w.pages == 64  # 16,384 pages / 256
    slots = pages // 256
    assert np.array_equal(slots, np.arange(64))  # one page in each 1 MiB slot...
    assert len(np.unique(pages % 256)) > 32  # ...at scattered places inside it, not all at its start
    assert w.n_ops == len(stream)
    with pytest.raises(WorkloadError, match="spread"):
        make_workload("tlbstress", footprint=1 << 20, spread=512)
