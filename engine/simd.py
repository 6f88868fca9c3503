"""Eight words of a set compared with a key at once: one vector compare in compiled code.

A TLB or walk-cache lookup compares a key with every way of a set. Written as a loop over the ways,
numba's code for a set of 4 to 12 ways was a vectorised loop with its set-up, a remainder and a
reduction, some 40 instructions a scan, and a nested-paging miss scans six or seven sets (README,
Speed). ``first_key_lane`` is that compare in LLVM's own vector operations: a load of eight words, a
compare with the key in every lane, the lanes' results as the bits of one integer, and its lowest set
bit; on x86-64 a vector compare, a mask move and a bit scan (AVX-512; two compares and moves with AVX2).
numba has no vector type of its own, so the compiled form is an intrinsic. Called from Python (the
interpreted build, tests) it is the plain loop below, and the tests hold the two to each other.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.extending import intrinsic, overload

LANES = 8  # words compared at once: one 512-bit vector


def first_key_lane(c, first, lanes, key):
    """The first lane i < `lanes` (at most LANES) where c[first + i] == key, or `lanes`. Compiled, it reads the
    LANES words from c[first] whatever `lanes` is: c must hold them (setassoc.make_arrays pads it)."""
    for lane in range(lanes):
        if c[first + lane] == key:
            return lane
    return lanes


@intrinsic
def _vector_key_lanes(typingctx, c, first, key):
    """The lanes i < LANES where c[first + i] == key, as bit i of the result, for LANES words inside c: an
    <8 x i64> load, a compare and a bitcast."""
    sig = types.int64(c, first, key)

    def codegen(context, builder, signature, args):
        array, start, wanted = args
        data = context.make_array(signature.args[0])(context, builder, array).data
        vector = ir.VectorType(ir.IntType(64), LANES)
        words = builder.load(builder.bitcast(builder.gep(data, [start]), vector.as_pointer()), align=8)
        splat = builder.insert_element(ir.Constant(vector, ir.Undefined), wanted, ir.Constant(ir.IntType(32), 0))
        splat = builder.shuffle_vector(splat, ir.Constant(vector, ir.Undefined),
                                       ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES))
        equal = builder.icmp_signed("==", words, splat)
        return builder.zext(builder.bitcast(equal, ir.IntType(LANES)), ir.IntType(64))

    return sig, codegen


@overload(first_key_lane, jit_options={"_nrt": False, "forceinline": True, "no_cpython_wrapper": True,
                                       "no_cfunc_wrapper": True})
def _compiled_first_key_lane(c, first, lanes, key):
    def impl(c, first, lanes, key):  # reads LANES words: c ends with LANES - 1 words of padding (setassoc)
        return trailing_zeros((_vector_key_lanes(c, first, key) & ((1 << lanes) - 1)) | (1 << lanes))

    return impl
