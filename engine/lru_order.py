"""A set's LRU order in one word: its ways from least to most recently used, 4 bits each.

The victim of a fill is the low 4 bits, and a use moves a way to the top in a few shifts, where stamps need
a scan of the whole set for the oldest. 15 ways at most, so no step overflows an int64. The bare kernels of
``bench.py`` keep only this; the engine keeps stamps as the truth (every view, snapshot and invalidation
reads them) and ``fast_miss.py`` keeps order words beside them as a cache, rebuilt from the stamps when stale.
"""

from __future__ import annotations

from numba.cpython.unsafe.numbers import trailing_zeros

from .routine import routine

ORDER_WAYS = 15
_NIBBLE_ONES = 0x0111111111111111  # 1 in each of the 15 nibbles
_NIBBLE_HIGHS = 0x0888888888888888  # the high bit of each


@routine
def order_to_top(order, way, ways):
    """An order word with `way` moved to the top (most recent)."""
    x = order ^ (way * _NIBBLE_ONES)  # way's nibble becomes 0; the lowest 0 nibble is found exactly
    at = trailing_zeros((x - _NIBBLE_ONES) & ~x & _NIBBLE_HIGHS) >> 2
    if at >= ways - 1:
        return order
    below = order & ((1 << (4 * at)) - 1)
    above = (order >> (4 * (at + 1))) & ((1 << (4 * (ways - 1 - at))) - 1)
    return below | (above << (4 * at)) | (way << (4 * (ways - 1)))


@routine
def order_of_stamps(stamps):
    """The order word of a set whose ways have these stamps: oldest first, the lower way first among equals
    (empty ways, stamp 0, in way order), so its low 4 bits are setassoc.lru_way's victim."""
    ways = stamps.shape[0]
    order = 0
    for way in range(ways):
        stamp = stamps[way]
        rank = 0
        for other in range(ways):
            older = stamps[other]
            rank += 1 if older < stamp or (older == stamp and other < way) else 0
        order |= way << (4 * rank)
    return order
