"""The TLB hierarchy against a brute-force reference model (a list per set, LRU by timestamps)."""

from __future__ import annotations

from unittest import mock

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from machine_helpers import BASE, CACHES_OFF, cfg_from
from rvi_tui.engine import setassoc
from rvi_tui.engine.events import Translated
from rvi_tui.engine.layout import S_L2, ST_CLOCK, TF_GLOBAL
from rvi_tui.engine.machine import Machine
from rvi_tui.engine.setassoc import (
    ASID,
    FLAGS,
    KEY,
    PADDING,
    STAMP,
    VAL,
    drop,
    fields,
    lru_ages,
    make_arrays,
    sa_fill,
    sa_find,
    sa_insert,
    sa_touch,
    wide_first_way,
    wide_lru_way,
)
from rvi_tui.workloads import ops as O


class ReferenceCache:
    """What an LRU set-associative cache does, written the obvious way."""

    def __init__(self, sets: int, ways: int):
        self.sets = [[] for _ in range(sets)]  # each: list of [key, last use]
        self.ways = ways
        self.clock = 0

    def lookup(self, key: int) -> bool:
        self.clock += 1
        for line in self.sets[key % len(self.sets)]:
            if line[0] == key:
                line[1] = self.clock
                return True
        return False

    def insert(self, key: int) -> None:
        self.clock += 1
        lines = self.sets[key % len(self.sets)]
        for line in lines:
            if line[0] == key:
                line[1] = self.clock
                return
        if len(lines) == self.ways:
            lines.remove(min(lines, key=lambda line: line[1]))
        lines.append([key, self.clock])

    def invalidate(self, key: int) -> None:
        lines = self.sets[key % len(self.sets)]
        lines[:] = [line for line in lines if line[0] != key]

    def ages(self, key: int) -> list[tuple[int, int]]:
        """(key, how many keys of its set were used more recently) for each key in key's set."""
        lines = self.sets[key % len(self.sets)]
        return sorted((line[0], sum(other[1] > line[1] for other in lines)) for line in lines)


WAYS = [1, 2, 3, 4, 8, 12, 16, 24]


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 5), st.sampled_from(WAYS),
       st.lists(st.tuples(st.integers(0, 120), st.booleans()), min_size=1, max_size=400), st.booleans())
def test_set_associative_structure_matches_reference(sets, ways, steps, wide):
    """Lookups, fills and invalidations in any order: the same hits, the same ages, the same ways refilled;
    with `wide`, sets of more than NARROW ways are scanned as the batch builds scan a TLB's."""
    with mock.patch.object(setassoc, "VECTOR_SCANS", wide):
        check_against_reference(sets, ways, steps)


def check_against_reference(sets, ways, steps):
    geom, c = make_arrays([(sets, ways)])
    state = np.zeros(16, dtype=np.int64)
    ref = ReferenceCache(sets, ways)
    for key, invalidate in steps:
        slot = sa_find(geom, c, 0, key, key, 0, True)
        if invalidate:
            ref.invalidate(key)
            if slot >= 0:
                view = fields(geom, c, 0)
                drop(geom, c, 0, view[KEY] == key)
            continue
        hit = slot >= 0
        if hit:
            sa_touch(geom, c, state, 0, slot)
        assert hit == ref.lookup(key)
        if not hit:
            view = fields(geom, c, 0)
            row = key % sets
            empty = np.nonzero(view[KEY][row] == -1)[0]
            slot, _ = sa_insert(geom, c, state, 0, key, key, 0, 0, 0, True)
            if len(empty):  # an empty way is filled before any entry is evicted, the lowest first
                assert slot - int(geom[0, 0]) == row * 5 * ways + empty[0]  # 5 fields a way
            ref.insert(key)
        view = fields(geom, c, 0)
        row = key % sets
        ages = lru_ages(geom, c, 0)[row]
        assert sorted((int(k), int(a)) for k, a in zip(view[KEY][row], ages) if k != -1) == ref.ages(key)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=80), st.integers(0, 6), st.integers(0, 5), st.integers(0, 5))
def test_wide_scans_find_the_first_match_and_the_oldest_way(values, key, before, after):
    """The batch builds' scans without early exit: the first way holding a key (or the set's size), and the
    first way holding the lowest stamp, of a set among other words: the key before it and a stamp lower than
    any of its own after it, where the scans must not look."""
    array = np.array([key] * before + values + [-1] * after, dtype=np.int64)
    expected = (values.index(key) if key in values else len(values)), int(np.argmin(values))
    assert (wide_first_way(array, before, len(values), key), wide_lru_way(array, before, len(values))) == expected
    # compiled, eight words at a time by vector compares (simd.py), over an array padded as make_arrays pads c
    padded = np.concatenate([array, np.zeros(PADDING, np.int64)])
    assert compiled_wide_scans(padded, before, len(values), key) == expected


@njit(cache=False)
def compiled_wide_scans(array, first, ways, key):
    return wide_first_way(array, first, ways, key), wide_lru_way(array, first, ways)


def test_a_wide_scan_looks_past_a_key_held_under_another_tag():
    """One page under two PCIDs in one 16-way set: the wide scan finds the key first under the other tag and
    must go on to the entry whose tag matches; a global entry matches any PCID of its VPID only."""
    geom, c = make_arrays([(1, 16)])
    view = fields(geom, c, 0)
    view[KEY][0, 3], view[ASID][0, 3], view[VAL][0, 3] = 40, 0x1001, 11
    view[KEY][0, 9], view[ASID][0, 9], view[VAL][0, 9] = 40, 0x1002, 22
    base = int(geom[0, 0])
    with mock.patch.object(setassoc, "VECTOR_SCANS", True):
        assert sa_find(geom, c, 0, 40, 40, 0x1002, True) == base + 9
        assert sa_find(geom, c, 0, 40, 40, 0x1001, True) == base + 3
        assert sa_find(geom, c, 0, 40, 40, 0x1003, True) == -1
        view[FLAGS][0, 9] = TF_GLOBAL
        assert sa_find(geom, c, 0, 40, 40, 0x1003, True) == base + 9
        assert sa_find(geom, c, 0, 40, 40, 0x2003, True) == -1


def reference_hierarchy(pages, l1, l2):
    """Outcome per access of the engine's TLB policy: L1 hit; L2 hit refills L1; a miss fills both."""
    out = []
    for vpn in pages:
        if l1.lookup(vpn):
            out.append("L1")
        elif l2.lookup(vpn):
            l1.insert(vpn)
            out.append("L2")
        else:
            l2.insert(vpn)
            l1.insert(vpn)
            out.append("walk")
    return out


GEOMETRY = {"tlb.l1_4k.entries": 8, "tlb.l1_4k.ways": 2, "tlb.l1_2m.entries": 0, "tlb.l1_1g.entries": 0,
            "tlb.l2.entries": 24, "tlb.l2.ways": 4}


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 63), min_size=1, max_size=250), st.sampled_from(["native", "nested", "shadow"]))
def test_tlb_hierarchy_matches_reference_per_access(pages, mode):
    machine = Machine(mode, cfg_from({**GEOMETRY, **CACHES_OFF}))
    machine.run(O.mmap(1, BASE, 64 << 12, huge=False))
    machine.run(O.accesses(BASE + (np.arange(64) << 12), rw=O.WRITE))  # fault every page in
    machine.mmu.flush_all()
    outcomes = []
    for page in pages:
        done = [e for e in machine.step(O.accesses([BASE + (page << 12) + 8])) if isinstance(e, Translated)]
        outcomes.append(done[-1].via)
    expected = reference_hierarchy([(BASE >> 12) + p for p in pages], ReferenceCache(4, 2), ReferenceCache(6, 4))
    assert outcomes == expected


def test_a_fill_reads_back_under_each_field_name_and_stamps_follow_keys():
    """The compiled routines and the Python views agree on where each field lives; a set's stamps sit right
    after its keys, as a TLB miss reads those two alone (setassoc's layout, README "Miss-heavy streams")."""
    geom, c = make_arrays([(4, 12), (2, 3)], fields_of=[5, 2])
    state = np.zeros(16, dtype=np.int64)
    slot, evicted = sa_fill(geom, c, state, 0, 6, 6, 0x2003, 777, 0x41, False)
    assert evicted == -1
    view = fields(geom, c, 0)
    row, way = 6 % 4, slot - int(geom[0, 0]) - (6 % 4) * 5 * 12
    assert [int(view[f][row, way]) for f in (KEY, ASID, VAL, FLAGS, STAMP)] == [6, 0x2003, 777, 0x41, state[ST_CLOCK]]
    assert c[slot + STAMP * 12] == state[ST_CLOCK] and STAMP == 1  # keys, then stamps, in every structure
    assert sa_find(geom, c, 0, 6, 6, 0x2003, False) == slot and sa_find(geom, c, 0, 6, 6, 0x2004, False) == -1
    assert fields(geom, c, 1).shape == (2, 2, 3)  # a data cache: keys and stamps alone


def test_l2_sets_follow_vpn_modulo_sets():
    """Set index = virtual page number mod sets, for a non-power-of-two set count too."""
    machine = Machine("native", cfg_from({**GEOMETRY, "tlb.l2.entries": 12, "tlb.l2.ways": 4}))  # 3 sets
    machine.run(O.mmap(1, BASE, 1 << 20, huge=False))
    machine.run(O.accesses(BASE + (np.arange(6) << 12)))
    for s, way, key, *_ in machine.mmu.entries(S_L2):
        assert s == (key >> 2) % 3


def test_kernel_counter_slots_match_the_counter_names():
    """The compiled kernel writes counters by fixed slot; each slot must be the counter it claims."""
    from rvi_tui.engine.counters import INDEX, KERNEL_SLOTS

    assert all(INDEX[name] == slot for name, slot in KERNEL_SLOTS.items())
