"""Valgrind lackey traces (``valgrind --tool=lackey --trace-mem=yes``).

Lines::

    I  0401234,3     instruction fetch (kept as FETCH only with ifetch)
     L 1ffefff8a0,8  load
     S 1ffefff8a0,8  store
     M 0421f38,4     modify: a load then a store of the same address
    ==1234== ...     Valgrind's banner and summary (skipped)

An access whose bytes run into the next 4 KiB page touches that page too, so
it adds an access at the start of the next page. The kernel parses bytes
directly, with a fast path for lines exactly as lackey prints them: over
20 M lines/s uncompressed (about 12 M/s through gzip, which zlib bounds), so
a multi-GB trace replays in seconds.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .ops import FETCH, READ, WRITE
from .textparse import (BAD, DONE, E_RANGE, E_SIZE, E_SYNTAX, FULL, HEX_VALUE, MAX_OPS_PER_LINE, address_error,
                        is_space, line_end, parse_hex)

_U = np.uint64
_PAGE_MASK = _U(0xFFF)
_ALL_ONES = _U(0xFFFF_FFFF_FFFF_FFFF)
# Lackey prints sizes as small decimals; more digits than this is not a size.
_MAX_SIZE_DIGITS = 9

# line kinds
_SKIP, _FETCH, _LOAD, _STORE, _MODIFY = 0, 1, 2, 3, 4


@njit(cache=True, nogil=True)
def _parse_line(buf, s, e, va_bits):
    """(kind, addr, size, err) for the line buf[s:e] (newline excluded)."""
    while e > s and is_space(buf[e - 1]):
        e -= 1
    while s < e and is_space(buf[s]):
        s += 1
    if s == e:
        return _SKIP, _U(0), _U(0), 0
    c = buf[s]
    if e - s >= 2 and ((c == 61 and buf[s + 1] == 61) or (c == 45 and buf[s + 1] == 45)):  # "==" or "--"
        return _SKIP, _U(0), _U(0), 0
    if c == 73:  # I
        kind = _FETCH
    elif c == 76:  # L
        kind = _LOAD
    elif c == 83:  # S
        kind = _STORE
    elif c == 77:  # M
        kind = _MODIFY
    else:
        return _SKIP, _U(0), _U(0), E_SYNTAX
    i = s + 1
    if i >= e or buf[i] != 32:
        return _SKIP, _U(0), _U(0), E_SYNTAX
    while i < e and buf[i] == 32:
        i += 1
    addr, i, err = parse_hex(buf, i, e)
    if err:
        return _SKIP, addr, _U(0), err
    if i >= e or buf[i] != 44:  # ','
        return _SKIP, addr, _U(0), E_SYNTAX
    i += 1
    if i >= e:
        return _SKIP, addr, _U(0), E_SYNTAX
    size = _U(0)
    digits = 0
    while i < e:
        c = buf[i]
        if c < 48 or c > 57:
            return _SKIP, addr, _U(0), E_SYNTAX
        digits += 1
        if digits > _MAX_SIZE_DIGITS:
            return _SKIP, addr, _U(0), E_SIZE
        size = size * _U(10) + _U(c - 48)
        i += 1
    err = address_error(addr, va_bits)
    if err:
        return _SKIP, addr, size, err
    if size > _U(0):
        if addr > _ALL_ONES - (size - _U(1)):
            return _SKIP, addr, size, E_RANGE
        if address_error((addr + size - _U(1)) & ~_PAGE_MASK, va_bits):
            return _SKIP, addr, size, E_RANGE
    return kind, addr, size, 0


@njit(cache=True, nogil=True)
def _parse_exact(buf, s, end, va_bits):
    """The fast path for a line exactly as lackey prints it ("I  hex,dec" or " X hex,dec" then a newline).

    (kind, addr, size, index of the newline), or kind -1 for anything else, which
    the general parser then handles (and reports if it is bad).
    """
    if s + 3 >= end or buf[s + 2] != 32:
        return -1, _U(0), _U(0), s
    c0 = buf[s]
    c1 = buf[s + 1]
    if c0 == 73 and c1 == 32:
        kind = _FETCH
    elif c0 == 32 and c1 == 76:
        kind = _LOAD
    elif c0 == 32 and c1 == 83:
        kind = _STORE
    elif c0 == 32 and c1 == 77:
        kind = _MODIFY
    else:
        return -1, _U(0), _U(0), s
    i = s + 3
    addr = _U(0)
    while i < end:
        d = HEX_VALUE[buf[i]]
        if d < 0:
            break
        addr = (addr << _U(4)) | _U(d)
        i += 1
    digits = i - (s + 3)
    if digits == 0 or digits > 16 or i >= end or buf[i] != 44:
        return -1, _U(0), _U(0), s
    i += 1
    size = _U(0)
    start = i
    while i < end:
        c = buf[i]
        if c < 48 or c > 57:
            break
        size = size * _U(10) + _U(c - 48)
        i += 1
    if i == start or i - start > _MAX_SIZE_DIGITS or i >= end or buf[i] != 10:
        return -1, _U(0), _U(0), s
    if address_error(addr, va_bits) or addr > _ALL_ONES - size:
        return -1, _U(0), _U(0), s
    if size > _U(0) and address_error((addr + size - _U(1)) & ~_PAGE_MASK, va_bits):
        return -1, _U(0), _U(0), s
    return kind, addr, size, i


@njit(cache=True, nogil=True)
def _emit(out_rw, out_addr, n, rw, addr, next_page):
    out_rw[n] = rw
    out_addr[n] = addr
    n += 1
    if next_page:
        out_rw[n] = rw
        out_addr[n] = next_page
        n += 1
    return n


@njit(cache=True, nogil=True)
def parse_lackey(buf, pos, final, line_no, ifetch, skip_bad, va_bits, out_rw, out_addr, n_out):
    """The lackey kernel (see ``textparse`` for the contract)."""
    end = buf.size
    cap = out_rw.size
    skipped = 0
    fetches = 0
    while pos < end:
        if n_out + MAX_OPS_PER_LINE > cap:
            return pos, line_no, n_out, skipped, fetches, FULL, 0, 0, 0
        kind, addr, size, nl = _parse_exact(buf, pos, end, va_bits)
        err = 0
        if kind < 0:
            nl = line_end(buf, pos, end)
            if nl == end and not final:
                break
            kind, addr, size, err = _parse_line(buf, pos, nl, va_bits)
        if err:
            if not skip_bad:
                return pos, line_no, n_out, skipped, fetches, BAD, err, pos, nl
            skipped += 1
        elif kind != _SKIP:
            next_page = _U(0)
            if size > _U(1) and ((addr ^ (addr + size - _U(1))) & ~_PAGE_MASK) != _U(0):
                next_page = (addr | _PAGE_MASK) + _U(1)
            if kind == _LOAD:
                n_out = _emit(out_rw, out_addr, n_out, READ, addr, next_page)
            elif kind == _STORE:
                n_out = _emit(out_rw, out_addr, n_out, WRITE, addr, next_page)
            elif kind == _MODIFY:
                n_out = _emit(out_rw, out_addr, n_out, READ, addr, next_page)
                n_out = _emit(out_rw, out_addr, n_out, WRITE, addr, next_page)
            elif ifetch:
                n_out = _emit(out_rw, out_addr, n_out, FETCH, addr, next_page)
            else:
                fetches += 1
        pos = nl + 1
        line_no += 1
    return min(pos, end), line_no, n_out, skipped, fetches, DONE, 0, 0, 0
