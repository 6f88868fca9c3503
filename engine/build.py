"""How this copy of the kernel source is compiled. The defaults are the whole kernel, as the source reads.

``hardware.py`` loads the same source again under other package names with
other values: the step path's kernels record events and keep their routines
as separate functions (a step runs one op: its speed does not matter, and
each routine then compiles once, small); the batch path's are one build per
walk dimension (1D for native and shadow, 2D for nested), every routine
inlined by LLVM (``routine.py``) and no event code. numba prunes a branch on
a module constant, so what a build leaves out is never compiled.
"""

RECORD_EVENTS = True  # emit() records events when the step path asks (st[ST_EV_ON])
INLINE = True  # LLVM inlines every routine into run_accesses (False: each is a function of its own)
WALK_1D = True  # the one-dimensional walk (native, shadow)
WALK_2D = True  # the two-dimensional nested walk
VECTOR_SCANS = False  # set scans of wide sets without early exit, for LLVM to vectorise (setassoc.wide_first_way)
FAST_MISS = False  # L1 misses in a 4 KiB world take fast_miss.py (batch builds; tests hold it to access())
