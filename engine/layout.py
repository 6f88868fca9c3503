"""Indices shared by the compiled hardware path and the Python software path.

The kernels keep all machine state in a few flat int64 arrays (no Python
objects in the hot loop); this module names the slots. Numba folds these
module-level integers into constants at compile time.
"""

from __future__ import annotations

# --- modes --------------------------------------------------------------------
MODE_NATIVE = 0
MODE_SHADOW = 1
MODE_NESTED = 2

# --- set-associative structures (one flat array set per machine) ---------------
S_L1_4K = 0
S_L1_2M = 1
S_L1_1G = 2
S_L2 = 3
S_PWC = 4  # S_PWC + level - 2 for levels 2..5 (guest / native / shadow dimension)
S_NWC = 8  # S_NWC + level - 2 for levels 2..5 (nested dimension)
S_NTLB = 12
S_CACHE_L1D = 13
S_CACHE_L2 = 14
S_CACHE_L3 = 15
N_STRUCTS = 16
STRUCT_NAMES = (
    "L1 4K", "L1 2M", "L1 1G", "L2",
    "PWC L2", "PWC L3", "PWC L4", "PWC L5",
    "NWC L2", "NWC L3", "NWC L4", "NWC L5",
    "NTLB", "L1D", "L2$", "L3$",
)

# TLB entry flag bits (c_flags of TLB structures)
TF_SIZE_MASK = 3
TF_WRITABLE = 4
TF_DIRTY = 8
TF_GLOBAL = 16
TF_USER = 32
TF_NX = 64
# The size code of the page the translation came from (the guest's, or the shadow leaf's), which can
# be larger than the entry's own size when a large page is cached as smaller pieces: a guest 2 MiB
# page over 4 KiB host pages (splintering), or a 1 GiB page smashed into a 2 MiB L1. INVLPG of any
# address in that page must drop every piece (Intel SDM Vol. 3A §4.10.2.3).
TF_PAGE_SHIFT = 7
TF_PAGE_MASK = 3 << TF_PAGE_SHIFT

# --- machine state slots ---------------------------------------------------------
ST_CLOCK = 0  # LRU clock
ST_MODE = 1
ST_ROOT = 2  # frame of the table the hardware walks first (gCR3 or shadow root)
ST_ASID = 3  # vpid << 12 | pcid
ST_GLEVELS = 4  # levels of the table walked in the first dimension
ST_HLEVELS = 5  # levels of the nested table
ST_NROOT = 6  # frame of the nested root (nested mode)
ST_HOST_SIZE = 7  # host page size code (nested mode)
ST_EV_ON = 8  # 1 = record events (step path)
ST_EV_N = 9  # events recorded so far
ST_PID = 10  # current process
ST_G_BASE = 11  # first frame number covered by the guest row map
ST_H_BASE = 12  # first frame number covered by the host row map
ST_CACHE_ON = 13  # 1 = walk references go through the data-cache model
ST_DATA_CACHE = 14  # 1 = the program's data accesses go through it too (and compete with walks)
ST_SIZES = 15  # bit s set once a page of size code s has entered the TLBs (skips probing absent sizes)
ST_MAX_WALK = 16  # the most references a completed walk took since software last cleared it (the event index)
ST_FAST_MISS = 17  # 1 = the batch builds may serve an L1 miss by fast_miss.py; 0: never (tests); 2: as 1, with the
# L2's order words used from the first fill of a generation (tests: fast_miss.l2_victim)
N_STATE = 18

# --- costs (cycles) ---------------------------------------------------------------
C_BASE = 0  # every access
C_L1 = 1  # L1 TLB lookup
C_L2 = 2  # L2 TLB lookup after an L1 miss
C_PWC = 3  # a walk-cache (PWC/NWC) lookup that hits
C_NTLB = 4  # a nested-TLB lookup that hits
C_L1D = 5  # C_L1D + served level (L1D, L2, L3, DRAM)
C_L2C = 6
C_L3C = 7
C_DRAM = 8
C_FLAT = 9  # every walk reference when the cache model is off
N_COSTS = 10

# --- stop codes (why the kernel returned to Python) --------------------------------
STOP_DONE = 0  # reached the end of the chunk
STOP_OSOP = 1  # a guest-OS op (MMAP, FORK, ...)
STOP_PID = 2  # an access by a process that is not current
STOP_GUEST_FAULT = 3  # the first-dimension walk found no/insufficient entry (native, nested)
STOP_NPF = 4  # nested page fault: gPA not backed (nested)
STOP_SHADOW_FAULT = 5  # shadow entry absent or too weak (shadow)
STOP_BUILD = 6  # a kernel build without the walk this mode needs (build.py): a bug, never a workload
STOP_NAMES = ("done", "os-op", "pid", "guest-fault", "npf", "shadow-fault", "no-walk-in-build")
# stop info slots
SI_CODE = 0
SI_INDEX = 1
SI_ADDR = 2  # faulting virtual address (or gPA for NPF)
SI_LEVEL = 3  # level whose entry was missing / too weak
SI_WRITE = 4
SI_PRESENT = 5  # 1 = a protection fault (entry present), 0 = not present
SI_ROW = 6  # NPF: the 2D-walk row (guest level of the table, 0 = data page)
N_STOP = 8

# --- events (step path) -------------------------------------------------------------
# each event is a row of N_EVF int64: kind, then fields
EV_TLB = 1  # struct, hit, set, way, vpn, size
EV_TLB_FILL = 2  # struct, set, way, vpn, size, evicted vpn (-1 none)
EV_REF = 3  # dim, row, col, phys addr, served, entry value
EV_SKIP = 4  # dim, row, col, struct that served it (PWC/NWC/NTLB), 0, 0
EV_FAULT = 5  # stop code, addr, level, write, present
EV_DONE = 6  # phys addr, size code, tlb level (0 = L1, 1 = L2, 2 = walk), 0
EV_ASSIST = 7  # a write to a clean or read-only TLB entry re-walks to set D
N_EVF = 8
MAX_EVENTS = 4096

DIM_GUEST = 0  # native table, or the guest table in nested mode
DIM_NESTED = 1
DIM_SHADOW = 2
DIM_NAMES = ("guest", "nested", "shadow")

SERVED_L1D = 0
SERVED_L2 = 1
SERVED_L3 = 2
SERVED_DRAM = 3
SERVED_MEM = 4  # flat latency (cache model off)
SERVED_NAMES = ("L1D", "L2$", "L3$", "DRAM", "mem")

# --- software state the fast fault path reads and writes (fast_fault.py; one int64 array per machine) -----
SW_FAST = 0  # 1 = the batch path handles the common faults in compiled code (0: every fault goes to Python)
SW_ZERO_FRAME = 1  # the guest's shared zero page, -1 until its first use (input, set before each kernel call)
SW_GCR3 = 2  # the current process's guest CR3 frame (input)
SW_COST_PF = 3  # cycles: the guest's fault handler (guest_os.GuestOS.cost_pf)
SW_COST_PTE = 4  # cycles: one guest PTE write
SW_VM_EXIT = 5  # cycles: a VM exit's round trip
SW_COST_INJECT = 6  # cycles: the hypervisor's handler of an injected #PF
SW_COST_FILL = 7  # cycles: the hypervisor's handler of a hidden fault (a shadow fill)
SW_HOST_ALLOC = 8  # cycles: allocating (and clearing) one host page behind guest memory
SW_HOST_SIZE = 9  # host page size code
SW_PLACE_MASK = 10  # host.Placement.mask
SW_PREFETCH = 11  # shadow.prefetch (PTE_PREFETCH_NUM)
SW_SEQ = 12  # shadow: exits so far (KVM's flush requests made during one exit are served once)
SW_NOTED_EXIT = 13  # software events of the fast path, by kind, since Python last took them (machine.noted)
SW_NOTED_GUEST_FAULT = 14
SW_NOTED_SHADOW_SYNC = 15
SW_NOTED_FLUSH = 16
SW_COST_CLEAR = 17  # cycles: clearing a 4 KiB page (guest_os.GuestOS._prepare)
SW_COST_COPY = 18  # cycles: copying one
SW_MAX_PAGE = 19  # the guest's largest page size code (guest.page)
SW_COST_NPF = 20  # cycles: the hypervisor's handler of a nested page fault
SW_UNSYNC = 21  # shadow: the mmu_unsync gauge's live value (shadow pages unsync now)
SW_COST_INVLPG = 22  # cycles: the hypervisor's handler of an INVLPG exit
SW_FLUSHED_SEQ = 23  # shadow: the exit (SW_SEQ) whose TLB flush request was served last (-1: none yet)
N_SW = 24

# --- a physical memory's free 4 KiB frames (physmem.PhysicalMemory.pool: one int64 array) -----------------
POOL_N = 0  # frames in the stack
POOL_IN_USE = 1  # frames allocated, of every size
POOL_FIRST = 2  # the stack: the next frame to hand out is the last one

# --- guest page references (page_refs.PageRefs.counts: int32 rows, a column per unit) ---------------------
# row s (0, 1, 2): mappings of the 4 KiB / 2 MiB / 1 GiB unit at column frame >> 9s;
# row REFS_BLOCK + s: references on the block of that size starting there (0: no such block)
REFS_BLOCK = 3

# --- shadow pages: one row per host table row (shadow.py's ShadowPage state, read by the fast path) -------
M_SHADOW = 0  # 1 = the host table page of this row is a shadow page
M_GFN = 1
M_LEVEL = 2
M_DIRECT = 3
M_ACCESS = 4
M_UNSYNC = 5
M_FLOOD = 6
M_STALE = 7  # 16 words of 32 bits (the same in Python and numba): bit i set = entry i may lag the guest's
N_META = 23
