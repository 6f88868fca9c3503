"""The translation engine: x86-64 tables, TLBs, walk caches, guest OS, hypervisor, modes.

Knows nothing of the UI: it consumes ops and produces counters, events and snapshots.
"""
