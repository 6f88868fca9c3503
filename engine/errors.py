"""Errors the engine reports to a user: one line each, never a traceback."""


class EngineError(Exception):
    """Something the simulated machine cannot do (exhausted memory, a segfault in a trace...)."""


class ConfigError(ValueError):
    """An unknown config key or a bad value; the message names the key."""
