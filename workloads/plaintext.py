"""Plain-text traces: one address per line, the simplest format any tool can write.

Lines::

    0x7ffd1234        a read
    7ffd1234          hex without 0x is the same
    W 0x7ffd1234      R (read), W (write) or X (fetch; kept only with ifetch)
    # a comment       from '#' to the end of the line; blank lines are ignored
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .ops import FETCH, READ, WRITE
from .textparse import BAD, DONE, E_SYNTAX, FULL, MAX_OPS_PER_LINE, address_error, is_space, line_end, parse_hex

_U = np.uint64
_NONE = -1


@njit(cache=True, nogil=True)
def _parse_line(buf, s, e, va_bits):
    """(rw or _NONE for no access, addr, err) for the line buf[s:e]."""
    i = s
    while i < e and buf[i] != 35:  # cut the comment
        i += 1
    e = i
    while e > s and is_space(buf[e - 1]):
        e -= 1
    while s < e and is_space(buf[s]):
        s += 1
    if s == e:
        return _NONE, _U(0), 0
    rw = READ
    c = buf[s] | 32  # lower case
    if c == 114 or c == 119 or c == 120:  # r w x
        if s + 1 >= e or not is_space(buf[s + 1]):
            return _NONE, _U(0), E_SYNTAX
        rw = READ if c == 114 else (WRITE if c == 119 else FETCH)
        s += 1
        while s < e and is_space(buf[s]):
            s += 1
    if e - s >= 2 and buf[s] == 48 and (buf[s + 1] | 32) == 120:  # 0x
        s += 2
    addr, i, err = parse_hex(buf, s, e)
    if err:
        return _NONE, addr, err
    if i != e:
        return _NONE, addr, E_SYNTAX
    err = address_error(addr, va_bits)
    if err:
        return _NONE, addr, err
    return rw, addr, 0


@njit(cache=True, nogil=True)
def parse_text(buf, pos, final, line_no, ifetch, skip_bad, va_bits, out_rw, out_addr, n_out):
    """The plain-text kernel (see ``textparse`` for the contract)."""
    end = buf.size
    cap = out_rw.size
    skipped = 0
    fetches = 0
    while pos < end:
        if n_out + MAX_OPS_PER_LINE > cap:
            return pos, line_no, n_out, skipped, fetches, FULL, 0, 0, 0
        nl = line_end(buf, pos, end)
        if nl == end and not final:
            break
        rw, addr, err = _parse_line(buf, pos, nl, va_bits)
        if err:
            if not skip_bad:
                return pos, line_no, n_out, skipped, fetches, BAD, err, pos, nl
            skipped += 1
        elif rw == FETCH and not ifetch:
            fetches += 1
        elif rw != _NONE:
            out_rw[n_out] = rw
            out_addr[n_out] = addr
            n_out += 1
        pos = nl + 1
        line_no += 1
    return min(pos, end), line_no, n_out, skipped, fetches, DONE, 0, 0, 0
