"""What a fault costs depends on the page it prepares: clearing or copying 4 KiB, 2 MiB or 1 GiB is not the
same work (Linux: clear_page / clear_huge_page, copy_page in wp_page_copy). cost.guest_pf is a measured
4 KiB first touch, so it includes one 4 KiB clear; larger pages and copies add by their bytes."""

from __future__ import annotations

import pytest

from machine_helpers import BASE, cfg_from, delta
from rvi_tui.engine.config import ConfigError
from rvi_tui.engine.machine import Machine
from rvi_tui.workloads import ops as O

CFG = cfg_from({})
PF, CLEAR, COPY = CFG["cost.guest_pf"], CFG["cost.clear_4k"], CFG["cost.copy_4k"]
PTE, OP = CFG["cost.guest_pte_write"], CFG["cost.guest_os_op"]


def machine(mode: str, guest_page: str = "4k", host_page: str = "4k") -> Machine:
    return Machine(mode, cfg_from({"guest.mem_gib": 4, "guest.page": guest_page, "host.page": host_page}))


def first_write(m: Machine, huge: bool) -> dict:
    m.run(O.mmap(1, BASE, 1 << 30, huge=huge))
    return delta(m, O.accesses([BASE], rw=O.WRITE))


@pytest.mark.parametrize("mode", ["native", "shadow", "nested"])
@pytest.mark.parametrize("page,units", [("4k", 1), ("2m", 512), ("1g", 1 << 18)])
def test_a_demand_fault_clears_the_page_it_maps(mode, page, units):
    d = first_write(machine(mode, page), huge=page != "4k")
    assert d["guest_pf"] == 1
    assert d["cyc_guest_os"] == PF - CLEAR + units * CLEAR + d["pte_writes"] * PTE


def test_a_2m_fault_costs_511_more_clears_than_a_4k_one():
    small = first_write(machine("native", "4k"), huge=False)["cyc_guest_os"]
    large = first_write(machine("native", "2m"), huge=True)["cyc_guest_os"]
    tables = 1  # the 4 KiB page needs one more table entry written (the PTE under its PDE)
    assert small - large == tables * PTE - 511 * CLEAR


@pytest.mark.parametrize("mode", ["native", "shadow", "nested"])
def test_a_cow_copy_charges_a_copy_and_a_zero_page_cow_a_clear(mode):
    m = machine(mode)
    m.run(O.concat([O.mmap(1, BASE, 1 << 20, huge=False), O.accesses([BASE], rw=O.WRITE),
                    O.op(O.FORK, pid=1, arg=2)]))
    d = delta(m, O.accesses([BASE + 8], rw=O.WRITE))
    assert d["cow_faults"] == 1
    assert d["cyc_guest_os"] == PF - CLEAR + COPY + d["pte_writes"] * PTE
    d = delta(m, O.concat([O.accesses([BASE + 4096]), O.accesses([BASE + 4096], rw=O.WRITE)]))
    assert d["zero_page_maps"] == 1 and d["cow_faults"] == 1
    # the read maps the zero page (nothing cleared), the write clears a fresh page
    assert d["cyc_guest_os"] == 2 * (PF - CLEAR) + CLEAR + d["pte_writes"] * PTE


@pytest.mark.parametrize("host_page,units", [("4k", 1), ("2m", 512), ("1g", 1 << 18)])
def test_a_large_host_page_costs_its_clear(host_page, units):
    m = machine("nested", "4k", host_page)
    d = first_write(m, huge=False)
    assert d["host_page_allocs"] >= 1
    handlers = d["exit_npf"] * CFG["cost.npf_handler"]
    per_alloc = CFG["cost.host_page_alloc"] + (units - 1) * CLEAR
    assert d["cyc_hypervisor"] == handlers + d["host_page_allocs"] * per_alloc


def test_a_fault_cost_below_its_own_clear_is_refused():
    with pytest.raises(ConfigError, match="cost.guest_pf"):
        cfg_from({"cost.guest_pf": CLEAR - 1})
