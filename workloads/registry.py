"""The workloads' public API: built-ins by name, trace files, sizes, errors.

The CLI and the TUI call only this module. Parameters are the factories'
keyword arguments; a string value (as typed on a command line) is converted
by the type of the parameter's default, sizes in bytes accepting units
("64k", "1g") and counts accepting decimal ones ("500k").
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from importlib import resources

from .base import DEFAULT_CHUNK, Workload, take_accesses
from .errors import RecordError, TraceError, WorkloadError
from .multiproc import multi, round_robin
from .npyfile import save_ops
from .os_activity import KCompile, MmapChurn, TlbStress, WebServer
from .synthetic import Chase, Phases, Random, Seq, Stride, Zipf
from .units import count_text, parse_count, parse_size, size_text

__all__ = [
    "DEFAULT_CHUNK", "RecordError", "TraceError", "Workload", "WorkloadError", "list_workloads", "make_workload",
    "open_trace", "parse_size", "round_robin", "save_ops", "workload_parameters", "workload_rows",
]

REAL_LS_FILE = "real-ls.lackey.gz"
REAL_LS_DESCRIPTION = ("real trace: `ls -l /etc/default` (x86-64 Linux, glibc) recorded with Valgrind lackey; "
                       "255k data accesses (700k more fetches with ifetch)")
_SIZE_PARAMS = {"footprint", "stride", "node"}


def __getattr__(name: str):
    """``open_trace``, imported when first asked for: the trace parsers import numba (~0.2 s), which checking
    a workload's name and parameters before the app starts need not wait for."""
    if name == "open_trace":
        from .traces import open_trace

        return open_trace
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def real_ls(*, accesses: int | None = None, ifetch: bool = False) -> Workload:
    """The shipped lackey trace of a real program; ``accesses`` replays only its first accesses."""
    from .traces import open_trace

    path = resources.files(__package__).joinpath("data", REAL_LS_FILE)
    trace = open_trace(str(path), "lackey", ifetch=ifetch)
    trace.name, trace.description = "real-ls", REAL_LS_DESCRIPTION
    return trace if accesses is None else take_accesses(trace, int(accesses))


_BUILTINS: dict[str, tuple[Callable[..., Workload], str]] = {
    cls.name: (cls, cls.description) for cls in (Seq, Stride, Random, Zipf, Chase, Phases)
}
_BUILTINS["multi"] = (multi, "several processes, each running a synthetic pattern in its own address space, "
                             "time-sliced with context switches")
_BUILTINS.update({cls.name: (cls, cls.description) for cls in (KCompile, WebServer, TlbStress, MmapChurn)})
_BUILTINS["real-ls"] = (real_ls, REAL_LS_DESCRIPTION)


def list_workloads() -> list[tuple[str, str]]:
    """(name, one-line description) of every built-in workload."""
    return [(name, description) for name, (_, description) in _BUILTINS.items()]


def workload_parameters(name: str) -> list[tuple[str, str]]:
    """(parameter, its default as typed on a command line) of a built-in workload, the seed left out (it has
    an option of its own); 'auto' for a default the workload works out itself."""
    if name not in _BUILTINS:
        raise WorkloadError(f"unknown workload {name!r} (known: {', '.join(_BUILTINS)})")
    out = []
    for key, p in inspect.signature(_BUILTINS[name][0]).parameters.items():
        if key == "seed":
            continue
        default = p.default
        if default is None:
            text = "auto"
        elif key in _SIZE_PARAMS:
            text = size_text(default)
        elif isinstance(default, int) and not isinstance(default, bool):
            text = count_text(default)
        else:
            text = str(default).lower() if isinstance(default, bool) else str(default)
        out.append((key, text))
    return out


def workload_rows() -> list[tuple[str, str, str]]:
    """(name, description, 'key=default …') of every built-in workload."""
    return [(name, desc, " ".join(f"{k}={v}" for k, v in workload_parameters(name))) for name, desc in list_workloads()]


def _coerce(name: str, key: str, value, default):
    """A command-line string converted like the parameter's default; other values as they are."""
    if not isinstance(value, str):
        return value
    if key in _SIZE_PARAMS or isinstance(default, int) and not isinstance(default, bool) or key == "accesses":
        try:
            return parse_size(value) if key in _SIZE_PARAMS else parse_count(value)
        except WorkloadError as e:
            raise WorkloadError(f"{name}: {key}: {e}") from None
    if isinstance(default, bool):
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise WorkloadError(f"{name}: {key} must be true or false, not {value!r}")
    if isinstance(default, float):
        try:
            return float(value)
        except ValueError:
            raise WorkloadError(f"{name}: {key} must be a number, not {value!r}") from None
    return value


def make_workload(name: str, *, footprint: int | None = None, accesses: int | None = None, seed: int = 1,
                  **extra) -> Workload:
    """The built-in workload ``name``; None for footprint/accesses means the workload's own default.

    ``seed`` is passed to every workload that draws random numbers (traces have
    none). Raises WorkloadError for an unknown name, a parameter the workload
    does not take, or a bad value.
    """
    if name not in _BUILTINS:
        raise WorkloadError(f"unknown workload {name!r} (known: {', '.join(_BUILTINS)})")
    factory = _BUILTINS[name][0]
    params = inspect.signature(factory).parameters
    known = ", ".join(params) or "none"
    given = {k: v for k, v in (("footprint", footprint), ("accesses", accesses)) if v is not None}
    given.update(extra)
    kwargs = {}
    for key, value in given.items():
        if key not in params:
            raise WorkloadError(f"workload {name!r} has no parameter {key!r} (its parameters: {known})")
        kwargs[key] = _coerce(name, key, value, params[key].default)
    if "seed" in params:
        kwargs["seed"] = _coerce(name, "seed", seed, 1)
    return factory(**kwargs)
