"""The compiled kernels against the same code run as plain Python (NUMBA_DISABLE_JIT=1).

numba types integers itself (a uint64 mixed with an int64 becomes a float, for one);
running the identical source interpreted is an independent check that compilation
changed nothing: every counter of every mode must agree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ARGS = ["report", "--json", "--footprint", "4m", "--accesses", "3k", "--seed", "7"]


def report(workload: str, extra: list[str], jit: bool) -> dict:
    env = dict(os.environ)
    if not jit:
        env["NUMBA_DISABLE_JIT"] = "1"
    done = subprocess.run([sys.executable, "-m", "rvi_tui.tui.cli", *ARGS, "-w", workload, *extra],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["modes"]


@pytest.mark.parametrize("workload,extra", [
    ("zipf", []),
    ("random", ["--guest-page", "2m", "--host-page", "2m"]),
    ("multi", ["--levels", "5", "--param", "procs=3"]),
])
def test_compiled_and_interpreted_kernels_agree(workload, extra):
    assert report(workload, extra, jit=True) == report(workload, extra, jit=False)
