"""Event-log lines for one stepped op: pure formatting, no Textual.

Every line starts with a word tag (``TLB``, ``WALK``, ``EXIT``, ``#PF``,
``SYNC``, ``OS``), so the log reads the same without colour (``NO_COLOR``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .walks import kind as event_kind
from .walks import saved_refs, split_walks

# filterable kinds, in the order the filter dialog lists them
KINDS = ("op", "tlb", "walk", "fault", "exit", "sync", "os", "flush")
KIND_LABELS = {
    "op": "ops (one header line per op)",
    "tlb": "TLB lookups and fills",
    "walk": "page walks (references, walk caches)",
    "fault": "faults (hardware faults, guest #PF)",
    "exit": "VM exits (reason, cycles)",
    "sync": "shadow-sync actions",
    "os": "guest OS operations",
    "flush": "TLB flushes and INVLPG",
}


@dataclass(frozen=True)
class LogLine:
    kind: str
    text: str


def _served_text(items, nested_walk: int) -> str:
    """'L1D 2 DRAM 1; saved PWC 3 NTLB 4': references by where served, then the ones saved (saved_refs)."""
    served: dict[str, int] = {}
    for x in items:
        if event_kind(x) == "WalkRef":
            served[x.served] = served.get(x.served, 0) + 1
    skipped = saved_refs(items, nested_walk)
    text = " ".join(f"{k} {v}" for k, v in served.items())
    if skipped:
        text += ("; " if text else "") + "saved " + " ".join(f"{k} {v}" for k, v in skipped.items())
    return text


def _fault_text(f) -> str:
    what = {"guest-fault": "guest page fault", "npf": "nested page fault", "shadow-fault": "shadow page fault"}
    state = "protection" if f.present else "not present"
    addr = f"gPA {f.addr:#x}" if f.kind == "npf" else f"{f.addr:#x}"
    return f"{what.get(f.kind, f.kind)} at L{f.level}: {addr} {state}{' (write)' if f.write else ''}"


def op_lines(op_index: int, op_text: str, events, sampled_gap: int = 0, nested_walk: int = 0) -> list[LogLine]:
    """Log lines for one op's events in one mode. sampled_gap: ops run in batch (no events) just before;
    nested_walk: the references of one nested walk in this mode (0 for 1-D walks), to count what caches saved."""
    out: list[LogLine] = []
    if sampled_gap:
        out.append(LogLine("op", f"⋯ {sampled_gap:,} ops run in batch (counters only, no events)"))
    kind = "os" if not op_text[:1] in ("R", "W", "X") else "op"
    out.append(LogLine("op", f"op #{op_index:,}  {'OS ' if kind == 'os' else ''}{op_text}"))
    attempts = split_walks(events)
    walk_no = 0
    in_walk = False
    lookups: list[str] = []

    def flush_lookups():
        if lookups:
            out.append(LogLine("tlb", "  TLB   " + " · ".join(lookups)))
            lookups.clear()

    for e in events:
        k = event_kind(e)
        if k == "TlbLookup":
            if in_walk:
                in_walk = False
            lookups.append(f"{e.struct} hit [{e.set}/{e.way}]" if e.hit else f"{e.struct} miss")
            continue
        if k in ("WalkRef", "WalkSkip"):
            if not in_walk:
                flush_lookups()
                in_walk = True
                a = attempts[walk_no] if walk_no < len(attempts) else None
                walk_no += 1
                if a is not None:
                    label = "D-bit assist" if a.assist else f"#{walk_no}"
                    end = "FAULT" if a.fault else "done"
                    out.append(LogLine("walk", f"  WALK  {label} {end}: {a.refs} ref{'s' if a.refs != 1 else ''} "
                                               f"{_served_text(a.items, nested_walk)}"))
            continue
        flush_lookups()
        if k == "HwFault":
            in_walk = False
            out.append(LogLine("fault", f"  #PF   {_fault_text(e)}"))
        elif k == "TlbFill":
            in_walk = False
            text = f"  TLB   fill {e.struct} [{e.set}/{e.way}] vpn {e.vpn:#x}"
            if e.evicted_vpn >= 0:
                text += f" evicting {e.evicted_vpn:#x}"
            out.append(LogLine("tlb", text))
        elif k == "Translated":
            size = ("4 KiB", "2 MiB", "1 GiB")[e.size] if 0 <= e.size < 3 else str(e.size)
            out.append(LogLine("tlb", f"  TLB   → {e.paddr:#x} ({size} page, via {e.via})"))
        elif k == "DirtyAssist":
            out.append(LogLine("walk", "  WALK  write to a clean/read-only TLB entry: re-walk to set D"))
        elif k == "Exit":
            detail = f": {e.detail}" if e.detail else ""
            out.append(LogLine("exit", f"  EXIT  {e.reason} ({e.cycles:,} cycles){detail}"))
        elif k == "GuestFault":
            rw = "write" if e.write else "read"
            out.append(LogLine("fault", f"  #PF   guest OS: {e.outcome} fault, {rw} {e.addr:#x}"))
        elif k == "ShadowSync":
            where = f" gPT {e.table:#x}" if e.table else ""
            lvl = f" L{e.level}" if e.level else ""
            out.append(LogLine("sync", f"  SYNC  {e.action} gVA {e.gva:#x}{where}{lvl}"))
        elif k == "OsOp":
            if e.text != op_text:  # the op header already says it
                out.append(LogLine("os", f"  OS    {e.text}"))
        elif k == "Flush":
            addr = f" {e.addr:#x}" if e.addr else ""
            out.append(LogLine("flush", f"  FLUSH {e.what}{addr}"))
        else:  # an event kind this UI does not know yet: show it rather than drop it
            out.append(LogLine("op", f"  {e!r}"))
    flush_lookups()
    return out


class OpLinesMemo:
    """Each recent op's lines per mode, made once: a mode switch writes the last LOG_REBUILD_OPS ops' lines anew
    (150 ops, 5-15 ms of formatting a key), mostly for ops the log has shown in that mode before. A record is an
    op's events as the runner made them, never changed after; the memo holds the record too, so an entry is only
    ever found for the very record it was made from."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._lines: dict[tuple[int, str, int], tuple[object, list[LogLine]]] = {}

    def lines(self, record, mode: str, nested_walk: int) -> list[LogLine]:
        key = (id(record), mode, nested_walk)
        known = self._lines.get(key)
        if known is not None and known[0] is record:
            return known[1]
        out = op_lines(record.op_index, record.op_text, record.events.get(mode, ()), record.gap, nested_walk)
        self._lines[key] = (record, out)
        if len(self._lines) > self._size:
            del self._lines[next(iter(self._lines))]  # the oldest
        return out
