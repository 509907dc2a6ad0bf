"""Small Numba utilities shared by the mining kernels: a counter-style RNG, hashing, prefetch.

The RNG is SplitMix64 (Steele, Lea & Flood, 2014): a 64-bit state advanced by a constant and
passed through a bijective mixer. It is tiny (one ``uint64`` of state per walker), fast, and
good enough for sampling neighbours. Kernels seed one stream per *work item* (for the random
walks: per (seed, query tweet, walk number)) with :func:`stream_seed`, so their output does not
depend on how many threads run them, how work is scheduled, or how many walkers are
interleaved.

All functions here are ``@njit`` and meant to be called from other kernels; state is passed
as a one-element (or per-walker) ``uint64`` array, so it can be updated in place.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S32 = np.uint64(32)
_S11 = np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53


@njit(inline="always", cache=True)
def mix64(z):
    """SplitMix64's finaliser: a bijection on uint64 with good avalanche."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(inline="always", cache=True)
def stream_seed(seed, a, b):
    """A well-mixed 64-bit state for the stream identified by ``(seed, a, b)``."""
    z = mix64(np.uint64(seed) + GOLDEN)
    z = mix64(z ^ (np.uint64(a) * _M1 + GOLDEN))
    z = mix64(z ^ (np.uint64(b) * _M2 + GOLDEN))
    return z


@njit(inline="always", cache=True)
def hash3(seed, a, b):
    """A deterministic pseudo-random uint64 of ``(seed, a, b)`` (no state)."""
    return stream_seed(seed, a, b)


@njit(inline="always", cache=True)
def next_u64(state, i):
    """Advance stream ``state[i]`` and return the next 64 random bits."""
    s = state[i] + GOLDEN
    state[i] = s
    return mix64(s)


@njit(inline="always", cache=True)
def next_below(state, i, n):
    """A uniform integer in ``[0, n)`` for ``0 < n < 2**32`` (Lemire's multiply-shift)."""
    r = next_u64(state, i) >> _S32
    return np.int64((r * np.uint64(n)) >> _S32)


@njit(inline="always", cache=True)
def next_float(state, i):
    """A uniform float64 in ``[0, 1)`` with 53 random bits."""
    return np.float64(next_u64(state, i) >> _S11) * _INV53


@njit(inline="always", cache=True)
def u64_to_unit(r):
    """Map 64 random bits to a float64 in ``[0, 1)``."""
    return np.float64(r >> _S11) * _INV53


@intrinsic
def prefetch(typingctx, arr, idx):
    """Hint the CPU to load ``arr[idx]`` into cache (no effect on results; never faults).

    Used by the interleaved walker: it issues the next load of walker *w*, then serves the
    other walkers while the cache line arrives.
    """
    if not isinstance(arr, types.Array) or not isinstance(idx, types.Integer):
        return None
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):
        aryty, _ = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        # (address, rw=0 read, locality=3 keep in all cache levels, cache type=1 data)
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen
