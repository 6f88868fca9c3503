"""Synthetic generators and the registry: determinism, bounds, counts, parameters."""

from __future__ import annotations

import numpy as np
import pytest

from rvi_tui.workloads import ops
from rvi_tui.workloads.base import rechunk
from rvi_tui.workloads.registry import WorkloadError, list_workloads, make_workload, parse_size
from rvi_tui.workloads.sampling import KeyedPermutation, zipf_ranks
from rvi_tui.workloads.synthetic import DATA_BASE, PATTERNS
from rvi_tui.workloads.units import parse_count

SMALL = dict(footprint=1 << 20, accesses=50_000)


def stream(workload, chunk_ops=1 << 16) -> np.ndarray:
    return np.concatenate(list(workload.chunks(chunk_ops)))


@pytest.mark.parametrize("name", list(PATTERNS))
def test_pattern_shape_and_bounds(name):
    w = make_workload(name, **SMALL)
    ops_ = stream(w)
    assert len(ops_) == w.n_ops == SMALL["accesses"] + 1
    first = ops_[0]
    assert first["kind"] == ops.MMAP and first["addr"] == DATA_BASE == w.base
    assert first["arg"] == w.footprint == SMALL["footprint"]
    assert first["flags"] == ops.MAP_WRITE | ops.MAP_HUGE
    acc = ops_[1:]
    assert (acc["kind"] == ops.ACCESS).all() and (acc["pid"] == 1).all()
    assert (acc["addr"] >= DATA_BASE).all() and (acc["addr"] < DATA_BASE + w.footprint).all()


@pytest.mark.parametrize("name", list(PATTERNS))
def test_pattern_deterministic_and_chunk_independent(name):
    a = stream(make_workload(name, **SMALL, seed=7))
    b = stream(make_workload(name, **SMALL, seed=7), chunk_ops=999)
    w = make_workload(name, **SMALL, seed=7)
    assert np.array_equal(a, b)
    assert np.array_equal(stream(w), stream(w))  # chunks() restarts
    sizes = [len(c) for c in w.chunks(999)]
    assert all(s == 999 for s in sizes[:-1]) and 0 < sizes[-1] <= 999
    if name not in ("seq", "stride"):
        assert not np.array_equal(a, stream(make_workload(name, **SMALL, seed=8)))


def test_write_fraction_defaults():
    for name in ("seq", "stride", "random"):
        assert (stream(make_workload(name, **SMALL))[1:]["rw"] == ops.READ).all()
    for name in ("zipf", "chase", "phases"):
        rw = stream(make_workload(name, **SMALL))[1:]["rw"]
        assert set(np.unique(rw)) <= {ops.READ, ops.WRITE}
        assert 0.27 < (rw == ops.WRITE).mean() < 0.33
    rw = stream(make_workload("random", **SMALL, write_frac=1.0))[1:]["rw"]
    assert (rw == ops.WRITE).all()


def test_seq_and_stride_addresses():
    a = stream(make_workload("seq", footprint=4096, accesses=1000))[1:]["addr"] - np.uint64(DATA_BASE)
    assert np.array_equal(a, (np.arange(1000) * 8) % 4096)
    a = stream(make_workload("stride", footprint=64 << 10, accesses=40, stride="8k"))[1:]["addr"] - np.uint64(DATA_BASE)
    assert np.array_equal(a, (np.arange(40) * 8192) % (64 << 10))


def test_random_is_uniform_and_aligned():
    a = stream(make_workload("random", footprint=1 << 20, accesses=200_000))[1:]["addr"]
    assert (a % 8 == 0).all()
    pages = np.bincount(((a - np.uint64(DATA_BASE)) >> np.uint64(12)).astype(np.int64), minlength=256)
    assert pages.min() > 0.8 * pages.mean() and pages.max() < 1.2 * pages.mean()


def test_zipf_is_skewed():
    a = stream(make_workload("zipf", footprint=64 << 20, accesses=200_000))[1:]["addr"]
    counts = np.sort(np.bincount(((a - np.uint64(DATA_BASE)) >> np.uint64(12)).astype(np.int64)))[::-1]
    # alpha 1.1 over 16384 pages: the hottest page gets about 1/zeta-ish of all accesses, the top 1% most of them
    assert counts[0] > 0.1 * len(a)
    assert counts[:164].sum() > 0.6 * len(a)


def test_chase_visits_every_node_once_per_cycle():
    footprint, node = 256 << 10, 64
    nodes = footprint // node
    w = make_workload("chase", footprint=footprint, accesses=2 * nodes + 5, node=node)
    a = stream(w)[1:]["addr"] - np.uint64(DATA_BASE)
    assert (a % node == 0).all()
    cycle = a[:nodes]
    assert len(np.unique(cycle)) == nodes  # one cycle through every node
    assert np.array_equal(a[nodes : 2 * nodes], cycle)  # and round again the same way
    assert not np.array_equal(np.sort(cycle), cycle)  # not a sequential walk


def test_phases_alternate():
    w = make_workload("phases", footprint=1 << 20, accesses=30_000, phase=10_000, write_frac=0.0)
    a = stream(w)[1:]["addr"] - np.uint64(DATA_BASE)
    assert np.array_equal(a[:10_000], np.arange(10_000) * 8)  # sequential first
    def hottest_share(addrs):
        return np.bincount((addrs >> np.uint64(12)).astype(np.int64)).max() / len(addrs)

    assert hottest_share(a[10_000:20_000]) < 0.01  # then uniform over the 256 pages
    assert hottest_share(a[20_000:]) > 0.1  # then hot/cold


@pytest.mark.parametrize("kw", [
    dict(footprint=100), dict(footprint=1 << 48), dict(accesses=0), dict(seed=-1), dict(write_frac=1.5),
])
def test_bad_parameters(kw):
    with pytest.raises(WorkloadError):
        make_workload("random", **kw)


def test_registry_errors_and_coercion():
    with pytest.raises(WorkloadError, match=r"unknown workload 'nope' \(known: seq, stride, random"):
        make_workload("nope")
    with pytest.raises(WorkloadError, match="has no parameter 'footprint'"):
        make_workload("kcompile", footprint=1 << 20)
    with pytest.raises(WorkloadError, match="has no parameter 'bogus'"):
        make_workload("zipf", bogus=3)
    with pytest.raises(WorkloadError):
        make_workload("zipf", alpha="hot")
    w = make_workload("zipf", footprint="2m", accesses="10k", alpha="0.8", write_frac="0")
    assert (w.footprint, w.accesses, w.alpha, w.write_frac) == (2 << 20, 10_000, 0.8, 0.0)
    assert make_workload("stride", stride="16k").stride == 16384


def test_list_workloads():
    listed = dict(list_workloads())
    for name in ("seq", "stride", "random", "zipf", "chase", "phases", "multi", "kcompile", "webserver",
                 "tlbstress", "mmapchurn", "real-ls"):
        assert name in listed
        assert listed[name] and "\n" not in listed[name]


def test_parse_size_and_count():
    assert [parse_size(s) for s in ("64k", "1g", "2MiB", "4096", "1.5g", "3 KB")] == [
        65536, 1 << 30, 2 << 20, 4096, 3 << 29, 3072]
    for junk in ("", "x", "-1", "1.3", "1e9", "12q", "k"):
        with pytest.raises(WorkloadError):
            parse_size(junk)
    assert [parse_count(s) for s in ("10", "1_000", "500k", "1.5m")] == [10, 1000, 500_000, 1_500_000]


def test_samplers():
    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 1000, 4096):
        perm = KeyedPermutation(n, rng)(np.arange(n, dtype=np.uint64))
        assert np.array_equal(np.sort(perm), np.arange(n))
    ranks = zipf_ranks(rng, 50, 1.0, 100_000)
    freq = np.bincount(ranks.astype(np.int64), minlength=50) / 100_000
    expect = 1 / np.arange(1, 51)
    assert np.abs(freq - expect / expect.sum()).max() < 0.01


def test_rechunk_exact_sizes():
    blocks = [ops.accesses(np.arange(n)) for n in (3, 0, 10, 1, 7)]
    out = list(rechunk(iter(blocks), 4))
    assert [len(c) for c in out] == [4, 4, 4, 4, 4, 1]
    assert np.array_equal(np.concatenate(out)["addr"], np.concatenate(blocks)["addr"])
