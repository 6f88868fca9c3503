"""How the hardware path's routines are compiled: ``@routine``, for every one of them but the entry point.

A routine is compiled only as part of the compiled code that calls it
(numba's ``register_jitable``): called from Python, it is the plain Python
function, and numba gives it no Python wrapper and no machine code of its own.
With ``build.INLINE`` LLVM inlines it into its caller (``forceinline``: the
``alwaysinline`` attribute), so the batch builds' ``run_accesses`` is one
function with no calls on its hot path, as fast as numba's own IR inlining
made it, at a fraction of the compile time: numba types and lowers each
routine once, where its IR inliner copied a routine's whole IR into every
call site, at a cost that grew with the square of the routine's size.
A routine is specialised on argument types only, not on the value of a
constant argument (an ``@njit`` callee is compiled again for each literal).
"""

from __future__ import annotations

from numba.extending import register_jitable

from .build import INLINE

routine = register_jitable(_nrt=False, forceinline=INLINE, no_cpython_wrapper=True, no_cfunc_wrapper=True)
