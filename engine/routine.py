"""How the hardware path's routines are compiled: ``@routine``, for every one of them but the entry point.

A routine is compiled only as part of the compiled code that calls it
(numba's ``register_jitable``): called from Python it is the plain Python
function, and numba builds it no Python or C wrapper. It is specialised on
its argument types only, where an ``@njit`` callee is compiled again for
each constant argument (``emit`` was, 16 times). With ``build.INLINE`` it
carries LLVM's ``alwaysinline`` (``forceinline``), so LLVM inlines it into
its caller: the batch builds' ``run_accesses`` is one function without a
call on its path, as numba's IR inliner made it, at a fraction of the
compile time. That inliner copied a routine's whole IR into every call site,
its scope once per block, at a cost that grew with the routine's blocks
times its variables (45 of a 60 s compile).
"""

from __future__ import annotations

from numba.extending import register_jitable

from .build import INLINE

routine = register_jitable(_nrt=False, forceinline=INLINE, no_cpython_wrapper=True, no_cfunc_wrapper=True)

# The fault path's routines (fast_fault.py) are functions of their own in every build: beside a fault's work a call
# costs nothing, and LLVM optimises each once instead of again inside every routine that would inline it (the
# fault path is deep: inlined, its innermost routines were optimised six times over). Its entry, fast_fault, is a
# routine: called once from the kernel's loop, but with every array's fields as arguments.
fault_routine = register_jitable(_nrt=False, no_cpython_wrapper=True, no_cfunc_wrapper=True)
