"""A workload's length for the progress bar (workloads/count.py): right, counted in a child process for the
workloads that must be generated to be counted, and the child never outlives its use."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from rvi_tui.workloads.count import OpCount
from rvi_tui.workloads.registry import make_workload
from serve_helpers import alive, wait_until


def wait(cond) -> None:
    wait_until(cond, 60, "the count")


def stream_length(workload) -> int:
    return sum(len(chunk) for chunk in workload.chunks())


@pytest.mark.parametrize("name, params", [("kcompile", {"jobs": 3}), ("webserver", {"accesses": 20_000}),
                                          ("mmapchurn", {"accesses": 20_000}), ("seq", {"accesses": 5000})])
def test_the_count_is_the_streams_length(name, params):
    workload = make_workload(name, **params)
    by_generating = workload.counts_by_generating
    heard = []
    count = OpCount(workload, on_count=heard.append)
    wait(lambda: count.get() is not None)
    assert count.get() == stream_length(make_workload(name, **params))
    wait(lambda: heard == [count.get()])
    if by_generating:  # counted in a child: this process never generated the stream
        assert count._child is not None and count._child.returncode == 0 and workload.counts_by_generating
    else:
        assert count._child is None


def test_a_workload_counted_once_is_not_counted_again():
    workload = make_workload("kcompile", jobs=2)
    assert workload.counts_by_generating
    n = stream_length(workload)  # a full pass learns the length
    assert not workload.counts_by_generating
    count = OpCount(workload)
    wait(lambda: count.get() is not None)
    assert count.get() == n and count._child is None


def test_closing_stops_the_child():
    count = OpCount(make_workload("kcompile", jobs=100_000))  # minutes of generating
    count.start()
    wait(lambda: count._child is not None)
    count.close()
    assert count._child.returncode is not None and count.get() is None
    time.sleep(0.2)
    assert count.get() is None  # the count it was killed in is never reported


def test_the_child_stops_once_its_parent_is_gone(tmp_path):
    """A run killed outright never closes its count: the child notices that its parent went and stops itself."""
    parent = textwrap.dedent("""
        import os, sys, time
        from rvi_tui.workloads.count import OpCount
        from rvi_tui.workloads.registry import make_workload
        count = OpCount(make_workload("kcompile", jobs=100_000))
        count.start()
        while count._child is None:
            time.sleep(0.01)
        print(count._child.pid, flush=True)
        os._exit(0)  # no close, no clean-up
    """)
    out = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, timeout=60, check=True)
    child = int(out.stdout)
    try:
        wait_until(lambda: not alive(child), 30, "the counting child to end once its parent had gone")
    finally:
        if alive(child):
            os.kill(child, 9)
