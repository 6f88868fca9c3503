"""How this copy of the kernel source is compiled. The defaults are the whole kernel, as the source reads.

``hardware.py`` loads the same source again under other package names with
other values: the step path's kernels record events and are compiled without
inlining (a step runs one op: its speed does not matter, and each routine then
compiles once, in a fraction of the time); the batch path's are one build per
walk dimension (1D for native and shadow, 2D for nested), everything inlined
and no event code. numba prunes a branch on a module constant before it
inlines, so what a build leaves out never reaches the IR its inliner copies,
which is where a cold compile spends most of its time.
"""

RECORD_EVENTS = True  # emit() records events when the step path asks (st[ST_EV_ON])
INLINE = "always"  # numba IR inlining of the hardware path's helpers ("never": separate functions)
WALK_1D = True  # the one-dimensional walk (native, shadow)
WALK_2D = True  # the two-dimensional nested walk
