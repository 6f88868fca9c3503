"""Which implementation of the hardware path runs: the compiled kernels, or their own source as plain Python.

Compiled code is a speed-up, never a gate (DESIGN.md, "Never wait for the
compiler"). On a cold numba cache the engine starts at once on the kernels'
source run as plain Python — the same files loaded a second time with numba's
JIT off, so there is one source of truth — while a child process compiles them
into the on-disk cache. The first ``Machine.run`` after the child is done loads
the compiled code and carries on from the same op: every kernel keeps all of
its state in numpy arrays its caller owns, so a switch between two calls loses,
repeats or reorders nothing, and both give the same counters (tested).
Compiling in another process keeps the UI's process free: it never holds the
GIL for the seconds LLVM takes.

The cache lives in the user's cache directory (``$RVI_TUI_CACHE_DIR``, else
``$XDG_CACHE_HOME/rvi-tui``, else ``~/.cache/rvi-tui``; a temporary directory
if none is writable), in a folder named by a hash of the kernels' source and
the versions of Python, numba, llvmlite and numpy. So a system install's
read-only site-packages is never written, an edited kernel never loads stale
machine code (numba keys its cache on the entry point's file alone), and two
processes that compile at once take turns on a lock: the second finds the
first one's cache complete and loads it.

``RVI_TUI_KERNELS`` chooses: ``auto`` (the default, as above), ``compiled``
(wait for the compiled kernels: benchmarks, tests) or ``interpreted`` (never
compile). ``NUMBA_DISABLE_JIT=1`` runs everything as plain Python, as numba
does.
"""

from __future__ import annotations

import ast
import gc
import hashlib
import importlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import EngineError

ENGINE_DIR = Path(__file__).resolve().parent
ENTRY_MODULE = "kernel"  # engine/kernel.py: run_accesses, and through its imports every compiled routine
INTERPRETED_PACKAGE = f"{__package__}._interpreted"
COMPLETE = "complete.json"  # written by the compiler child once every kernel is in the cache
LOCK = "compile.lock"
LOG = "compile.log"
POLL_S = 0.25  # how often a waiting caller looks at the compiler child
CHOICES = ("auto", "compiled", "interpreted")


@dataclass(frozen=True)
class Status:
    """What runs now, for status lines: compiled or interpreted, and the compiler child's progress."""

    compiled: bool
    compiling: bool = False
    elapsed: float = 0.0  # seconds since the compiler child started
    error: str | None = None  # why there will be no compiled kernels this run

    def describe(self) -> str:
        if self.compiled:
            return "compiled"
        if self.compiling:
            return f"interpreted, compiling {self.elapsed:.0f} s"
        return "interpreted" + (f" ({self.error})" if self.error else "")


# --- where the cache lives -------------------------------------------------------------------------------
def kernel_sources() -> list[Path]:
    """The engine modules the compiled entry point is built from: it and its relative imports, transitively."""
    seen: dict[str, Path] = {}
    todo = [ENTRY_MODULE]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = ENGINE_DIR / f"{name}.py"
        seen[name] = path
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                todo.append(node.module.split(".")[0])
    return [seen[k] for k in sorted(seen)]


def cache_key() -> str:
    digest = hashlib.sha256()
    for path in kernel_sources():
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    versions = [sys.version, platform.machine()]
    for dist in ("numba", "llvmlite", "numpy"):
        try:
            versions.append(importlib.metadata.version(dist))
        except importlib.metadata.PackageNotFoundError:
            versions.append("?")
    digest.update("\0".join(versions).encode())
    return digest.hexdigest()[:16]


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".probe-")
        probe.close()
        return True
    except OSError:
        return False


def cache_roots() -> list[Path]:
    """Candidate cache roots, best first."""
    roots = []
    if os.environ.get("RVI_TUI_CACHE_DIR"):
        roots.append(Path(os.environ["RVI_TUI_CACHE_DIR"]).expanduser())
    xdg = os.environ.get("XDG_CACHE_HOME")
    roots.append(Path(xdg).expanduser() / "rvi-tui" if xdg else Path.home() / ".cache" / "rvi-tui")
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    roots.append(Path(tempfile.gettempdir()) / f"rvi-tui-{uid}")
    return roots


_cache_dir: Path | None = None
_cache_error: str | None = None


def cache_dir() -> Path | None:
    """This build's kernel cache folder (made if needed); None if no candidate root is writable."""
    global _cache_dir, _cache_error
    if _cache_dir is None and _cache_error is None:
        key = cache_key()
        for root in cache_roots():
            if _writable(root / f"kernels-{key}"):
                _cache_dir = root / f"kernels-{key}"
                break
        else:
            _cache_error = "no writable cache directory (set RVI_TUI_CACHE_DIR)"
    return _cache_dir


def use_cache_dir(folder: Path) -> None:
    """Use exactly this folder (the compiler child, a benchmark's throwaway cache)."""
    global _cache_dir
    folder.mkdir(parents=True, exist_ok=True)
    _cache_dir = folder
    configure()


def configure() -> None:
    """Point numba's cache at this build's folder. Call before anything imports a compiled module."""
    folder = cache_dir()
    if folder is None:
        return
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    numba = sys.modules.get("numba")
    if numba is not None:
        numba.config.CACHE_DIR = str(folder)


def cache_complete(folder: Path | None = None) -> dict | None:
    """The compiler child's record (seconds, peak RSS) if the cache in `folder` is complete, else None."""
    folder = folder or cache_dir()
    if folder is None:
        return None
    try:
        return json.loads((folder / COMPLETE).read_text())
    except (OSError, ValueError):
        return None


def choice() -> str:
    value = os.environ.get("RVI_TUI_KERNELS", "auto").strip().lower() or "auto"
    if value not in CHOICES:
        raise EngineError(f"RVI_TUI_KERNELS={value!r}: must be one of {', '.join(CHOICES)}")
    return value


def jit_disabled() -> bool:
    return os.environ.get("NUMBA_DISABLE_JIT", "0").strip() not in ("", "0")


# --- the two implementations ----------------------------------------------------------------------------
_lock = threading.RLock()
_compiled: Callable | None = None  # compiled run_accesses, once loaded
_interpreted: Callable | None = None
_child: subprocess.Popen | None = None
_child_started = 0.0
_child_error: str | None = None
_last_poll = 0.0


def interpreted_module() -> types.ModuleType:
    """engine/kernel.py and what it imports, loaded again as plain Python under another package name."""
    with _lock:
        name = f"{INTERPRETED_PACKAGE}.{ENTRY_MODULE}"
        if name in sys.modules:
            return sys.modules[name]
        import numba

        package = types.ModuleType(INTERPRETED_PACKAGE)
        package.__path__ = [str(ENGINE_DIR)]
        package.__package__ = INTERPRETED_PACKAGE
        sys.modules[INTERPRETED_PACKAGE] = package
        saved = numba.config.DISABLE_JIT
        numba.config.DISABLE_JIT = True  # read by numba's decorators as each module is executed
        try:
            return importlib.import_module(name)
        finally:
            numba.config.DISABLE_JIT = saved


def _load_compiled() -> Callable:
    global _compiled
    configure()
    module = importlib.import_module(f"{__package__}.{ENTRY_MODULE}")
    _compiled = module.run_accesses
    return _compiled


def _compiled_ready() -> bool:
    """Has the compiler child finished (successfully)? Polled at most every POLL_S."""
    global _child, _child_error, _last_poll
    now = time.monotonic()
    if now - _last_poll < POLL_S:
        return False
    _last_poll = now
    if _child is not None:
        code = _child.poll()
        if code is None:
            return False
        _child = None
        if code != 0:
            _child_error = f"kernel compile failed (exit {code}; see {cache_dir() / LOG})"
            return False
    return cache_complete() is not None


def start_compiling() -> None:
    """Start the compiler child unless the cache is complete, one already runs, or compiling is off."""
    global _child, _child_started, _child_error
    with _lock:
        if _compiled is not None or _child is not None or _child_error or choice() == "interpreted":
            return
        if jit_disabled() or cache_dir() is None or cache_complete() is not None:
            return
        configure()
        folder = cache_dir()
        try:
            with open(folder / LOG, "ab") as log:  # the child keeps its own copy of the descriptor
                _child = subprocess.Popen([sys.executable, "-m", f"{__package__}.compile_kernels", str(folder)],
                                          stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=dict(os.environ))
        except OSError as e:  # the engine runs on, interpreted
            _child_error = f"cannot start the kernel compiler: {e}"
            return
        _child_started = time.monotonic()


def run_accesses() -> Callable:
    """The implementation of ``kernel.run_accesses`` to call now: compiled when it is ready, else interpreted."""
    if _compiled is not None:
        return _compiled
    with _lock:
        if _compiled is not None:
            return _compiled
        if jit_disabled():
            return _load_compiled()  # numba's own switch: the decorators return plain functions
        mode = choice()
        if mode == "compiled":
            return require_compiled()
        if mode == "auto":
            complete = _compiled_ready() if _child is not None else (not _child_error and cache_complete() is not None)
            if complete:
                fn = _load_compiled()
                gc.freeze()  # numba's code objects are large and permanent: keep them out of full collections
                return fn
            start_compiling()
        global _interpreted
        if _interpreted is None:
            _interpreted = interpreted_module().run_accesses
        return _interpreted


def require_compiled(progress: Callable[[float], None] | None = None) -> Callable:
    """Wait for the compiled kernels (compiling them in the child if needed); progress(seconds) while waiting."""
    global _last_poll
    with _lock:
        if _compiled is not None:
            return _compiled
        if jit_disabled():
            return _load_compiled()
        if cache_dir() is None:
            raise EngineError(f"cannot compile the kernels: {_cache_error}")
        if cache_complete() is None:
            start_compiling()
            while _child is not None:
                if progress is not None:
                    progress(time.monotonic() - _child_started)
                time.sleep(POLL_S)
                _last_poll = 0.0
                _compiled_ready()
            if _child_error:
                raise EngineError(_child_error)
        fn = _load_compiled()
        gc.freeze()
        return fn


def status() -> Status:
    if _compiled is not None:
        return Status(compiled=True)
    if _child is not None:
        return Status(compiled=False, compiling=True, elapsed=time.monotonic() - _child_started)
    error = _child_error or _cache_error or ("NUMBA_DISABLE_JIT" if jit_disabled() else None)
    return Status(compiled=False, error=error)
