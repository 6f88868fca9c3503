"""Which implementation of the hardware path runs: the compiled kernels, or their own source as plain Python.

Compiled code is a speed-up, never a gate (DESIGN.md, "Never wait for the
compiler"). On a cold numba cache the engine starts at once on the kernels'
source run as plain Python — the same files loaded a second time with numba's
JIT off, so there is one source of truth — while a child process compiles the
compiled builds (``Variant`` below, ``build.py``) into the on-disk cache, in
stages: the quick step build first, which serves every path until the fully
inlined batch builds are in. The first ``Machine.run`` after a stage is done
loads it and carries on from the same op: every kernel keeps all of its state
in numpy arrays its caller owns, so a switch between two calls loses, repeats
or reorders nothing, and every build gives the same counters (tested).
Compiling in another process keeps the UI's process free: it never holds the
GIL for the seconds LLVM takes.

The cache lives in the user's cache directory (``$RVI_TUI_CACHE_DIR``, else
``$NUMBA_CACHE_DIR``, else ``$XDG_CACHE_HOME/rvi-tui``, else ``~/.cache/rvi-tui``;
a temporary directory if none is writable), in a folder named by a hash of the kernels' source, their
location and the versions of Python, numba, llvmlite and numpy. So a system install's
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
import functools
import gc
import hashlib
import importlib
import importlib.metadata
import json
import os
import platform
import signal
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
LOCK = "compile.lock"
LOG = "compile.log"
POLL_S = 0.25  # how often a waiting caller looks at the compiler child
CHOICES = ("auto", "compiled", "interpreted")


@dataclass(frozen=True)
class Status:
    """What runs now, for status lines: interpreted, a first compiled build, or every build; and the compiler."""

    compiled: bool  # some compiled build serves every path
    full: bool = False  # the batch path runs its own fully inlined builds
    compiling: bool = False
    elapsed: float = 0.0  # seconds since the compiler child started
    error: str | None = None  # why there will be no (more) compiled kernels this run

    def describe(self) -> str:
        if self.full:
            return "compiled"
        if self.compiled:
            return f"compiled, optimising {self.elapsed:.0f} s" if self.compiling else "compiled (step build)"
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


@functools.cache
def cache_key() -> str:
    digest = hashlib.sha256()
    for path in kernel_sources():
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(repr(STAGE_VARIANTS).encode())  # how each build compiles that source (build.py's values)
    # numba files its cache under the source file's path, so a folder serves one install location only
    versions = [str(ENGINE_DIR), sys.version, platform.machine()]
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
    for variable in ("RVI_TUI_CACHE_DIR", "NUMBA_CACHE_DIR"):  # a user's numba cache setting is honoured too
        if os.environ.get(variable):
            root = Path(os.environ[variable]).expanduser()
            roots.append(root.parent if root.name == f"kernels-{cache_key()}" else root)  # configure() set it
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
    if folder.name == f"kernels-{cache_key()}":  # processes this one starts find the same folder
        os.environ["RVI_TUI_CACHE_DIR"] = str(folder.parent)
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    numba = sys.modules.get("numba")
    if numba is not None:
        numba.config.CACHE_DIR = str(folder)


def stage_marker(folder: Path, stage: str) -> Path:
    return folder / f"{stage}.json"


def stage_record(stage: str, folder: Path | None = None) -> dict | None:
    """The compiler's record of one stage (seconds, peak RSS) once its kernels are in the cache, else None."""
    folder = folder or cache_dir()
    if folder is None:
        return None
    try:
        return json.loads(stage_marker(folder, stage).read_text())
    except (OSError, ValueError):
        return None


def cache_complete(folder: Path | None = None) -> dict | None:
    """Every stage's record if the cache in `folder` holds every build, else None."""
    records = {stage: stage_record(stage, folder) for stage in STAGES}
    return records if all(records.values()) else None


def choice() -> str:
    value = os.environ.get("RVI_TUI_KERNELS", "auto").strip().lower() or "auto"
    if value not in CHOICES:
        raise EngineError(f"RVI_TUI_KERNELS={value!r}: must be one of {', '.join(CHOICES)}")
    return value


def jit_disabled() -> bool:
    return os.environ.get("NUMBA_DISABLE_JIT", "0").strip() not in ("", "0")


# --- the implementations ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Variant:
    """One build of engine/kernel.py and what it imports (build.py says what each setting does)."""

    package: str  # the sub-package name it is loaded under, beside the engine package
    jit: bool = True
    record_events: bool = True
    inline: bool = True
    walk_1d: bool = True
    walk_2d: bool = True
    vector_scans: bool = False
    fast_miss: bool = False


STEP = Variant("_stepping", inline=False)  # one op at a time, with events: compiles fast
# the batch builds: native and shadow (every access counts), and nested
BATCH_1D = Variant("_batch1d", record_events=False, walk_2d=False, vector_scans=True, fast_miss=True)
BATCH_2D = Variant("_batch2d", record_events=False, walk_1d=False, vector_scans=True, fast_miss=True)
INTERPRETED = Variant("_interpreted", jit=False, inline=False)  # everything, until compiled
STAGE_VARIANTS = {"step": STEP, "batch1d": BATCH_1D, "batch2d": BATCH_2D}
STAGES = tuple(STAGE_VARIANTS)  # the compiler's order: the quick build first, it serves every path meanwhile
KEYS = tuple((record, nested) for record in (False, True) for nested in (False, True))

_lock = threading.RLock()
_compiled: dict[tuple[bool, bool], Callable] | None = None  # (record, nested) -> compiled run_accesses
_adopted: frozenset = frozenset()  # the stages _compiled is made of
_full = False  # every stage adopted: nothing left to look for
_interpreted: Callable | None = None
_child: subprocess.Popen | None = None
_child_started = 0.0
_child_error: str | None = None
_last_poll = 0.0


def load_variant(variant: Variant) -> types.ModuleType:
    """engine/kernel.py as built by `variant`: the source files loaded again under another package name, with
    their own build module, numba's JIT on or off, and (compiled) a cache folder of their own: numba names a
    cache entry by file and function, which every variant shares."""
    with _lock:
        package_name = f"{__package__}.{variant.package}"
        name = f"{package_name}.{ENTRY_MODULE}"
        if name in sys.modules:
            return sys.modules[name]
        import numba

        package = types.ModuleType(package_name)
        package.__path__ = [str(ENGINE_DIR)]
        package.__package__ = package_name
        build = types.ModuleType(f"{package_name}.build")
        build.RECORD_EVENTS = variant.record_events
        build.INLINE = variant.inline
        build.WALK_1D = variant.walk_1d
        build.WALK_2D = variant.walk_2d
        build.VECTOR_SCANS = variant.vector_scans
        build.FAST_MISS = variant.fast_miss
        sys.modules[package_name] = package
        sys.modules[build.__name__] = build
        saved = numba.config.DISABLE_JIT, numba.config.CACHE_DIR
        numba.config.DISABLE_JIT = not variant.jit  # numba's decorators read both as each module executes
        folder = cache_dir()
        if variant.jit and folder is not None:
            numba.config.CACHE_DIR = str(folder / variant.package)
        try:
            return importlib.import_module(name)
        finally:
            numba.config.DISABLE_JIT, numba.config.CACHE_DIR = saved


def interpreted_module() -> types.ModuleType:
    return load_variant(INTERPRETED)


def _adopt(stages: frozenset) -> None:
    """Serve every path from the compiled builds of `stages`: the step build serves them all until the batch
    builds are in (a build that is not there yet is never imported, so nothing compiles in this process)."""
    global _compiled, _adopted, _full
    if not stages or stages == _adopted or "step" not in stages:
        return
    step = load_variant(STEP).run_accesses
    kernels = {key: step for key in KEYS}
    if "batch1d" in stages:
        kernels[False, False] = load_variant(BATCH_1D).run_accesses
    if "batch2d" in stages:
        kernels[False, True] = load_variant(BATCH_2D).run_accesses
    _compiled, _adopted, _full = kernels, stages, stages == frozenset(STAGES)
    gc.freeze()  # numba's code objects are large and permanent: keep them out of full collections


def serve_only(kernel: Callable) -> None:
    """Run every path on this one function (the compiler child, compiling the build it runs)."""
    global _compiled, _full
    _compiled, _full = {key: kernel for key in KEYS}, True


def _poll() -> None:
    """Adopt the stages the compiler has finished (at most every POLL_S); note a compiler that failed."""
    global _child, _child_error, _last_poll
    now = time.monotonic()
    if now - _last_poll < POLL_S:
        return
    _last_poll = now
    if _child is not None and (code := _child.poll()) is not None:
        _child = None
        if code != 0:
            _child_error = f"kernel compile failed (exit {code}; see {cache_dir() / LOG})"
    _adopt(frozenset(stage for stage in STAGES if stage_record(stage) is not None))


def stop_compiling() -> None:
    """End the compiler child and its stages, if one runs (a benchmark that compiled into a throwaway folder:
    left running, it would load the machine for the next measurement)."""
    global _child
    with _lock:
        child, _child = _child, None
    if child is None or child.poll() is not None:
        return
    try:
        if hasattr(os, "killpg"):
            os.killpg(child.pid, signal.SIGTERM)
        else:
            child.terminate()
        child.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass


def start_compiling() -> None:
    """Start the compiler child unless the cache is complete, one already runs, or compiling is off."""
    global _child, _child_started, _child_error
    with _lock:
        if _full or _child is not None or _child_error or choice() == "interpreted":
            return
        if jit_disabled() or cache_dir() is None or cache_complete() is not None:
            return
        configure()
        folder = cache_dir()
        try:
            with open(folder / LOG, "ab") as log:  # the child keeps its own copy of the descriptor
                # a session of its own: a terminal's Ctrl-C or hangup leaves it to finish, and stop_compiling()
                # ends it with its stages
                _child = subprocess.Popen([sys.executable, "-m", f"{__package__}.compile_kernels", str(folder)],
                                          stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=dict(os.environ),
                                          start_new_session=True)
        except OSError as e:  # the engine runs on, interpreted
            _child_error = f"cannot start the kernel compiler: {e}"
            return
        _child_started = time.monotonic()


def _interpreted_kernel() -> Callable:
    global _interpreted
    if _interpreted is None:
        _interpreted = interpreted_module().run_accesses
    return _interpreted


def run_accesses(record: bool, nested: bool) -> Callable:
    """The ``kernel.run_accesses`` to call now, for the step path (`record`: with events) or the batch path, of
    a nested machine or not: the best compiled build ready, else the same source interpreted."""
    if _full:
        return _compiled[record, nested]
    with _lock:
        if jit_disabled():
            return _interpreted_kernel()  # numba's own switch: everything plain Python
        mode = choice()
        if mode == "compiled":
            require_compiled()
        elif mode == "auto":
            _poll()
            if not _full:
                start_compiling()
        if _compiled is not None:
            return _compiled[record, nested]
        return _interpreted_kernel()


def start() -> Status:
    """Get ready to run: the compiled kernels if the cache has them, else the interpreted ones with the compiler
    started (in auto mode). Cheap once done; a caller polls it to take up the compiled kernels when idle."""
    run_accesses(False, False)
    return status()


def compiled_kernel(record: bool, nested: bool) -> Callable:
    """The compiled run_accesses of every build (waiting for the compiler if needed): benchmarks and tests."""
    require_compiled()
    return _compiled[record, nested]


def require_compiled(progress: Callable[[float], None] | None = None) -> None:
    """Wait for every compiled build (compiling them in the child if needed); progress(seconds) while waiting."""
    global _last_poll
    with _lock:
        if _full:
            return
        if jit_disabled():
            raise EngineError("NUMBA_DISABLE_JIT is set: there are no compiled kernels")
        if cache_dir() is None:
            raise EngineError(f"cannot compile the kernels: {_cache_error}")
        start_compiling()
        while _child is not None:
            if progress is not None:
                progress(time.monotonic() - _child_started)
            time.sleep(POLL_S)
            _last_poll = 0.0
            _poll()
        if _child_error:
            raise EngineError(_child_error)
        _last_poll = 0.0
        _poll()
        if not _full:
            raise EngineError(f"the kernel compiler ended without compiling every build (see {cache_dir() / LOG})")


def status() -> Status:
    compiling = _child is not None
    elapsed = time.monotonic() - _child_started if compiling else 0.0
    error = _child_error or _cache_error or ("NUMBA_DISABLE_JIT" if jit_disabled() else None)
    return Status(compiled=_compiled is not None, full=_full, compiling=compiling, elapsed=elapsed, error=error)
