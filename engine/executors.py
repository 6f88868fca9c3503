"""Where a sweep's cells run: in this process, in local worker processes, or on a Dask cluster.

Each executor yields ``run_cell`` results as cells finish, in any order; the caller keeps them by
cell key. A KeyboardInterrupt in the caller stops the workers and cancels what has not run: the
results already yielded are the caller's to keep.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterator

from .compile_kernels import usable_cores
from .errors import EngineError
from .sweep import Cell, TraceMissing, run_cell

Started = Callable[[Cell], None]


def default_jobs() -> int:
    return usable_cores()


def run_serial(cells: list[Cell], started: Started | None = None) -> Iterator[dict]:
    for cell in cells:
        if started:
            started(cell)
        yield run_cell(cell)


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C to the driver, which stops them all at once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def _real_stderr():
    """multiprocessing's resource tracker passes sys.stderr's descriptor to its process; under a Textual app
    sys.stderr is a capture whose fileno() is -1, which the spawn refuses. Lend it the process's own."""
    saved = sys.stderr
    try:
        if sys.__stderr__ is not None:
            sys.stderr = sys.__stderr__
        yield
    finally:
        sys.stderr = saved


def run_local(cells: list[Cell], jobs: int, started: Started | None = None,
              stop: Callable[[], bool] | None = None) -> Iterator[dict]:
    """Cells in `jobs` worker processes (spawned: no state inherited but the kernel cache's location,
    which hardware.configure() put in the environment). `stop()` true ends it between polls, the workers
    stopped (an app closing its study screen)."""
    if (jobs <= 1 or len(cells) <= 1) and stop is None:
        yield from run_serial(cells, started)
        return
    ctx = multiprocessing.get_context("spawn")
    with _real_stderr():
        pool = ctx.Pool(max(1, min(jobs, len(cells))), initializer=_ignore_sigint)
    try:
        pending = [pool.apply_async(run_cell, (cell,)) for cell in cells]
        running = set()
        for i, cell in enumerate(cells[:jobs]):
            running.add(i)
            if started:
                started(cell)
        next_up = len(running)
        while pending:
            if stop is not None and stop():
                return
            done = next((r for r in pending if r.ready()), None)
            if done is None:
                pending[0].wait(0.05)
                continue
            pending.remove(done)
            if next_up < len(cells) and started:
                started(cells[next_up])
            next_up += 1
            yield done.get()
        pool.close()
    finally:
        pool.terminate()
        pool.join()


def run_dask(cells: list[Cell], scheduler: str, started: Started | None = None) -> Iterator[dict]:
    """Cells as tasks on a Dask distributed cluster. A trace travels by content hash: a worker that has the
    file at the same path with the same SHA-256 reads it there; one that has not raises TraceMissing, and
    the cell goes again with the bytes, scattered to the cluster once per trace."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise EngineError("--scheduler needs Dask distributed: pip install 'rvi-tui[cluster]' "
                          "(or pip install '.[cluster]' in a clone)") from None
    try:
        client = Client(scheduler, timeout="10s")
    except OSError as e:
        raise EngineError(f"--scheduler {scheduler}: cannot connect ({e})") from None
    scattered: dict[str, object] = {}
    try:
        futures = {}
        for cell in cells:
            f = client.submit(run_cell, cell, pure=False)
            futures[f] = cell
            if started:
                started(cell)
        queue = as_completed(list(futures))
        for fut in queue:
            cell = futures.pop(fut)
            try:
                yield fut.result()
            except TraceMissing:
                if cell.trace_sha256 not in scattered:
                    with open(cell.trace, "rb") as f:
                        scattered[cell.trace_sha256] = client.scatter(f.read(), hash=True)
                again = client.submit(run_cell, cell, scattered[cell.trace_sha256], pure=False)
                futures[again] = cell
                queue.add(again)
    finally:
        client.cancel(list(futures))
        client.close()


@contextlib.contextmanager
def local_cluster(workers: int) -> Iterator:
    """A Dask LocalCluster of `workers` one-thread worker processes on 127.0.0.1, without a dashboard. Its Nannies
    set their workers' variables (MALLOC_TRIM_THRESHOLD_, OMP_NUM_THREADS, ...) in this process's environment
    and leave them there, for every process started later to inherit: they are taken back."""
    import logging

    from distributed import LocalCluster

    saved = dict(os.environ)
    try:
        # silence_logs: the workers' heartbeats that race the cluster's own shutdown are logged as tracebacks
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None, silence_logs=logging.CRITICAL) as cluster:
            _restore_environ(saved)
            yield cluster
    finally:
        _restore_environ(saved)


def _restore_environ(saved: dict) -> None:
    for name in set(os.environ) - set(saved):
        del os.environ[name]
    os.environ.update({k: v for k, v in saved.items() if os.environ.get(k) != v})


def sweep_speedup(cells: list[Cell], jobs: int = 2) -> dict:
    """Seconds for the same cells serially, in `jobs` local workers, and on a `jobs`-worker Dask LocalCluster
    bound to 127.0.0.1 (when distributed is installed), each with the rows checked equal to the serial run's.
    What `rvi-tui bench --sweep` prints."""
    import time

    def timed(results_of) -> tuple[float, dict]:
        start = time.perf_counter()
        results = {r["key"]: r["rows"] for r in results_of()}
        return time.perf_counter() - start, results

    out: dict = {"cells": len(cells), "jobs": jobs}
    out["serial_s"], serial = timed(lambda: run_serial(cells))
    out["local_s"], local = timed(lambda: run_local(cells, jobs))
    out["local_same"] = local == serial
    try:
        import distributed  # noqa: F401
    except ImportError:
        return out
    with local_cluster(jobs) as cluster:
        list(run_dask(cells[:jobs], cluster.scheduler_address))  # the workers load their kernels first
        out["dask_s"], remote = timed(lambda: run_dask(cells, cluster.scheduler_address))
    out["dask_same"] = remote == serial
    return out
