"""The exceptions of the workloads package.

Each carries a one-line message meant to be shown to the user as it is, so the
CLI and the TUI can print ``str(e)`` without a traceback.
"""

from __future__ import annotations


class WorkloadError(ValueError):
    """A bad workload name or parameter."""


class TraceError(ValueError):
    """A trace that cannot be read: ``FILE:LINE: what is wrong`` (or ``FILE: ...``)."""


class RecordError(RuntimeError):
    """Recording a trace failed (valgrind missing, the command failed, ...)."""
