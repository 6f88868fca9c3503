"""Workloads: deterministic op streams (synthetic generators and real traces).

Knows nothing of the engine: it only yields chunks of ops (see ``ops.py``).
"""
