"""Random samplers shared by the generators: bounded Zipf ranks and keyed permutations.

Both work element-wise in O(1) memory, so a 1 TiB footprint costs no more to
sample than a 64 KiB one (no per-page tables).
"""

from __future__ import annotations

import numpy as np


def _expm1_over(y):
    """expm1(y)/y, continuous at 0."""
    y = np.asarray(y, dtype=np.float64)
    small = np.abs(y) < 1e-8
    safe = np.where(small, 1.0, y)
    return np.where(small, 1.0 + y / 2.0, np.expm1(safe) / safe)


def _log1p_over(y):
    """log1p(y)/y, continuous at 0."""
    y = np.asarray(y, dtype=np.float64)
    small = np.abs(y) < 1e-8
    safe = np.where(small, 1.0, y)
    return np.where(small, 1.0 - y / 2.0, np.log1p(safe) / safe)


def zipf_ranks(rng: np.random.Generator, n_items: int, alpha: float, size: int) -> np.ndarray:
    """``size`` ranks in [0, n_items) with P(rank k) proportional to (k+1)**-alpha.

    Rejection-inversion (Hörmann & Derflinger 1996): exact for any alpha >= 0,
    no table of n_items weights, and nearly every candidate is accepted.
    """
    q = 1.0 - alpha

    def h_integral(x):
        lx = np.log(x)
        return _expm1_over(q * lx) * lx

    def h_integral_inv(x):
        t = np.maximum(x * q, -1.0)
        return np.exp(_log1p_over(t) * x)

    def h(x):
        return np.exp(-alpha * np.log(x))

    hx1 = h_integral(1.5) - 1.0
    hn = h_integral(n_items + 0.5)
    s = 2.0 - h_integral_inv(h_integral(2.5) - h(2.0))
    out = np.empty(size, dtype=np.uint64)
    todo = np.arange(size)
    while todo.size:
        u = hn + rng.random(todo.size) * (hx1 - hn)
        x = h_integral_inv(u)
        k = np.clip(np.floor(x + 0.5), 1, n_items)
        ok = (k - x <= s) | (u >= h_integral(k + 0.5) - h(k))
        out[todo[ok]] = (k[ok] - 1).astype(np.uint64)
        todo = todo[~ok]
    return out


class KeyedPermutation:
    """A pseudo-random bijection of [0, n) evaluated per element.

    Rounds of xor-key, multiply-by-odd and xorshift are each invertible modulo
    2**k, so together they permute [0, 2**k); cycle-walking (re-applying until
    the value falls below n) restricts that to a permutation of [0, n).
    """

    ROUNDS = 4

    def __init__(self, n: int, rng: np.random.Generator):
        if n < 1:
            raise ValueError("a permutation needs at least one element")
        self.n = n
        self.bits = max(1, (n - 1).bit_length())
        self.mask = np.uint64((1 << self.bits) - 1)
        self.shift = np.uint64(self.bits // 2 + 1)
        keys = rng.integers(0, 1 << 63, size=(self.ROUNDS, 2), dtype=np.uint64)
        self.xors = keys[:, 0] & self.mask
        self.muls = (keys[:, 1] | np.uint64(1)) & self.mask

    def _mix(self, x: np.ndarray) -> np.ndarray:
        for xor, mul in zip(self.xors, self.muls):
            x = ((x ^ xor) * mul) & self.mask
            x ^= x >> self.shift
        return x

    def __call__(self, x) -> np.ndarray:
        y = self._mix(np.asarray(x, dtype=np.uint64))
        out_of_range = np.flatnonzero(y >= self.n)
        while out_of_range.size:
            y[out_of_range] = self._mix(y[out_of_range])
            out_of_range = out_of_range[y[out_of_range] >= self.n]
        return y
