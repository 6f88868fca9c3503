"""Consistency of shadow paging with the guest, checked from outside the engine after every op."""

from __future__ import annotations

from rvi_tui.engine import entry as E


def check_shadow(machine) -> None:
    """Every present entry of a shadow page matches the guest entry it shadows, composed with the
    hypervisor's placement, except, in an unsync page, the entries the guest wrote since it went unsync
    and that no sync, INVLPG or fault has refreshed since (KVM lets those lag until the guest flushes);
    a synced page has no such entries; every write-protected guest page is a shadowed guest table page;
    the mmu_unsync gauge is the number of unsync pages."""
    mode = machine.mode
    gmem, hmem, place = machine.gmem, machine.host.mem, machine.host.placement
    assert mode.n_unsync == sum(sp.unsync for sp in mode.pages.values())
    for sp in mode.pages.values():
        assert hmem.is_table(sp.frame)
        if sp.direct:
            continue
        assert sp.unsync or not sp.stale, "a synced shadow page with entries that may lag the guest"
        assert not sp.unsync or sp.level == 1, "a non-leaf shadow page went unsync"
        assert gmem.is_table(sp.gfn), f"shadow page of gfn {sp.gfn:#x}, which is not a guest table"
        guest = gmem.table(sp.gfn)
        shadow = hmem.table(sp.frame)
        for index in shadow.nonzero()[0]:
            if int(index) in sp.stale:
                continue
            s, g = int(shadow[index]), int(guest[index])
            if not s & E.P:
                continue
            assert g & E.P, f"shadow entry {index} of gfn {sp.gfn:#x} present, guest entry absent"
            child = sp.children.get(int(index))
            if child is not None:
                assert child.gfn == E.frame_of(g), "shadow link points at the wrong guest table"
                assert E.frame_of(s) == child.frame
                continue
            g_leaf = sp.level == 1 or g & E.PS
            assert g_leaf, "shadow leaf under a guest non-leaf entry"
            assert E.frame_of(s) == place(E.frame_of(g)), "shadow leaf maps a different host frame"
            if s & E.RW:
                assert g & E.RW and g & E.D, "shadow leaf writable while the guest's is read-only or clean"
    for gfn in mode.by_gfn:
        if mode.write_protected(gfn):
            assert gmem.is_table(gfn), f"write-protected gfn {gfn:#x} is not a guest table page"
