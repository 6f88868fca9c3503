"""A workload's chunks made in a child process (workloads/child_stream.py): the same bytes as made here, the
workload's own errors raised here, a clear error if the child dies, and no child left behind."""

from __future__ import annotations

import io
import json
import os
import signal

import numpy as np
import pytest

from rvi_tui.tui.cli import main
from rvi_tui.workloads.child_stream import chunks_from_child
from rvi_tui.workloads.errors import WorkloadError
from rvi_tui.workloads.registry import make_workload


@pytest.mark.parametrize("name, params", [("kcompile", {"jobs": 3}), ("webserver", {"accesses": 20_000}),
                                          ("mmapchurn", {"accesses": 20_000}), ("seq", {"accesses": 5000})])
def test_the_child_makes_the_same_chunks(name, params):
    here = list(make_workload(name, **params).chunks(4096))
    there = list(chunks_from_child(make_workload(name, **params), 4096))
    assert [len(c) for c in there] == [len(c) for c in here] and len(here) > 1
    assert all(a.dtype == b.dtype and a.tobytes() == b.tobytes() for a, b in zip(here, there))
    assert all(c.flags.writeable for c in there)


def test_an_os_workload_reports_the_same_counters_made_in_a_child(monkeypatch):
    """report runs an OS workload from a child process (on more than one core): the same report as made here."""
    from rvi_tui.tui import cli

    def report() -> dict:
        out = io.StringIO()
        assert main(["report", "-w", "kcompile", "--param", "jobs=2", "--mode", "all", "--json"], out=out,
                    err=io.StringIO()) == 0
        return json.loads(out.getvalue())

    made = []

    def stream_of(workload):
        stream = real(workload)
        made.append(stream.gi_code.co_name)
        return stream

    real = cli.stream_of
    monkeypatch.setattr(cli, "stream_of", stream_of)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    from_child = report()
    monkeypatch.setattr(os, "cpu_count", lambda: 1)  # one core: made here, where a child would gain nothing
    assert report() == from_child
    assert made == ["chunks_from_child", "rechunk"]  # rechunk: workload.chunks() here


def test_the_workloads_error_is_raised_here():
    workload = make_workload("kcompile", jobs=2)
    workload.jobs = "two"  # breaks its generator, wherever it runs
    with pytest.raises(TypeError) as here:
        list(workload.chunks())
    with pytest.raises(TypeError) as there:
        list(chunks_from_child(workload))
    assert str(there.value) == str(here.value)


def test_a_child_that_dies_is_a_clear_error():
    stream = chunks_from_child(make_workload("kcompile", jobs=100_000))
    next(stream)
    child = stream.gi_frame.f_locals["child"]
    os.kill(child.pid, signal.SIGKILL)
    with pytest.raises(WorkloadError, match=r"kcompile: the process making its ops ended unexpectedly \(exit code -9\)"):
        for _ in stream:
            pass


def test_closing_the_stream_stops_the_child():
    stream = chunks_from_child(make_workload("kcompile", jobs=100_000))  # minutes of ops
    first = next(stream)
    assert len(first) and isinstance(first, np.ndarray)
    child = stream.gi_frame.f_locals["child"]
    stream.close()
    assert child.returncode == -signal.SIGKILL  # killed, and reaped
