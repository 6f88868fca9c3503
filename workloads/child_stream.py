"""A workload's chunks made in a child process, while the run simulates the ones before.

An OS workload (kcompile, webserver, mmapchurn) is generated in Python, step
by step: a second of kcompile's default, a fifth of `rvi-tui report -w
kcompile --mode all`. Made in a child process, the stream comes through a pipe
while the run works on the chunks it already has, on another core. The pipe's
buffer keeps the child at most a chunk or two ahead, so memory stays that of a
chunk. The child's chunks are byte for byte those ``workload.chunks()`` makes
here; an error the workload raises there is raised here, as it would have been.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
from collections.abc import Iterator

import numpy as np

from .base import DEFAULT_CHUNK, Workload
from .errors import WorkloadError
from .ops import OP_DTYPE

_CHUNK, _END, _ERROR = b"C", b"E", b"X"
_HEADER = 9  # a kind byte and a length


def chunks_from_child(workload: Workload, chunk_ops: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
    """``workload.chunks(chunk_ops)``, made by a child process. Closing the iterator (or dropping it) stops
    the child; the child also stops once nobody reads its pipe."""
    child = start_child(__name__, workload, str(chunk_ops))
    try:
        pipe = child.stdout

        def read(size: int) -> bytearray:
            data = bytearray(size)
            if pipe.readinto(data) != size:
                child.wait()
                raise WorkloadError(f"{workload.name}: the process making its ops ended unexpectedly "
                                    f"(exit code {child.returncode})")
            return data

        while True:
            header = read(_HEADER)
            kind, body = header[:1], read(int.from_bytes(header[1:], "little"))
            if kind == _END:
                return
            if kind == _ERROR:
                raise pickle.loads(body)
            yield np.frombuffer(body, dtype=OP_DTYPE)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        child.stdout.close()


def start_child(module: str, workload: Workload, *args: str, **popen) -> subprocess.Popen:
    """``python -m module args...`` with `workload` pickled on its stdin (``read_workload`` takes it there) and
    its stdout a pipe."""
    child = subprocess.Popen([sys.executable, "-m", module, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             **popen)
    try:
        child.stdin.write(pickle.dumps(workload))
        child.stdin.close()
    except BrokenPipeError:
        pass  # it died at once: its stdout ends, and the reader says so
    return child


def read_workload() -> Workload:
    """In a child that ``start_child`` started: its workload."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's to handle: it stops this child
    return pickle.load(sys.stdin.buffer)


def _header(kind: bytes, size: int) -> bytes:
    return kind + size.to_bytes(_HEADER - 1, "little")


def main(chunk_ops: int) -> int:
    """The child: the pickled workload on stdin, its chunks in frames on stdout."""
    out = sys.stdout.buffer
    workload = read_workload()
    chunks = workload.chunks(chunk_ops)
    while True:
        try:
            chunk = next(chunks, None)
        except Exception as exc:  # the workload's own error: the run raises it as its own
            body = pickle.dumps(exc)
            out.write(_header(_ERROR, len(body)) + body)
            break
        if chunk is None:
            out.write(_header(_END, 0))
            break
        data = np.ascontiguousarray(chunk, dtype=OP_DTYPE).data.cast("B")
        out.write(_header(_CHUNK, len(data)))
        out.write(data)
    out.flush()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(int(sys.argv[1])))
    except BrokenPipeError:  # the run stopped reading: it has what it wanted
        os._exit(0)
