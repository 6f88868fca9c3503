"""Human sizes ("64k", "2MiB", "1.5g") and counts ("500k", "1.5m") as the CLI and the TUI take them."""

from __future__ import annotations

import re

from .errors import WorkloadError

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(?:i?b)?\s*", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes for a size such as ``4096``, ``64k``, ``2MiB``, ``1.5g`` (binary units).

    A fractional size must come to a whole number of bytes.
    """
    m = _SIZE.fullmatch(str(text))
    if m is None:
        raise WorkloadError(f"bad size {text!r}: expected a number with an optional unit k, m, g or t (e.g. 64k, 2MiB)")
    number, unit = m.groups()
    scale = _UNITS[unit.lower()]
    if "." in number:
        whole, _, frac = number.partition(".")
        num = int(whole or "0") * 10 ** len(frac) + int(frac or "0")
        value, rem = divmod(num * scale, 10 ** len(frac))
        if rem:
            raise WorkloadError(f"bad size {text!r}: not a whole number of bytes")
        return value
    return int(number) * scale


_COUNT = re.compile(r"\s*(\d[\d_]*(?:\.\d*)?|\.\d+)\s*([kmg]?)\s*", re.IGNORECASE)
_DECIMAL = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}


def parse_count(text: str) -> int:
    """A count such as ``1000000``, ``1_000_000``, ``500k``, ``1.5m`` (decimal units)."""
    m = _COUNT.fullmatch(str(text))
    if m is None:
        raise WorkloadError(f"bad count {text!r}: expected a whole number with an optional k, m or g (e.g. 500k)")
    number, unit = m.groups()
    whole, _, frac = number.replace("_", "").partition(".")
    num = int(whole or "0") * 10 ** len(frac) + int(frac or "0")
    value, rem = divmod(num * _DECIMAL[unit.lower()], 10 ** len(frac))
    if rem:
        raise WorkloadError(f"bad count {text!r}: not a whole number")
    return value


def size_text(n: int) -> str:
    """Bytes in the largest binary unit that divides them: 67108864 -> '64m'."""
    for unit in ("t", "g", "m", "k"):
        if n and n % _UNITS[unit] == 0:
            return f"{n // _UNITS[unit]}{unit}"
    return str(n)


def count_text(n: int) -> str:
    """A count in the largest decimal unit that divides it: 1000000 -> '1m'."""
    for unit in ("g", "m", "k"):
        if n and n % _DECIMAL[unit] == 0:
            return f"{n // _DECIMAL[unit]}{unit}"
    return str(n)
