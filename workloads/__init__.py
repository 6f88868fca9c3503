"""Workloads: deterministic op streams (synthetic generators, guest-OS activity and real traces).

Knows nothing of the engine: it only yields chunks of ops (see ``ops.py``).
The API the engine, CLI and TUI use is ``registry.py``; recording a trace is
``record.py``. Kept free of imports so that ``workloads.ops`` loads alone.
"""
