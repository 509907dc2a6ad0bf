"""Numba kernels of the training step: the row-wise passes around the three batched products.

Each is one parallel pass over a batch's rows that replaces several torch passes (and their
temporaries) over [B, d] arrays:

* :func:`select_edges` -- a batch's edges from the packed training edges
  (:class:`graph.embed.data.PackedEdges`);
* :func:`gather_operands` -- the stacked operands x = [u + r; t] and y = [corrupted tweets;
  corrupted users] straight from the node tables, and the dots of :func:`row_dots` on the way
  (four ``index_select``s, a relation gather, an add and two row-wise dots before);
* :func:`row_dots` -- the positives' scores (u + r)^T t and the terms r^T t of their user
  corruptions;
* :func:`positive_grads` / :func:`positive_grads_bf16` -- the positives' gradients with respect
  to u and t from the products' output (float32 or bfloat16), and the per-relation sums of the
  gradient with respect to r (a conversion, four ``addcmul``s and an ``index_add_`` before);
* :func:`score_grads` / :func:`score_grads_bf16` -- from the negatives' scores S to the loss and
  G = dLoss/dS (a conversion from bfloat16, an add, ``softplus``, a sum, ``sigmoid``, a scale, a
  row sum and a conversion to bfloat16 before). They evaluate exp and log1p by polynomials
  (numba has no vectorised ``exp`` without Intel's SVML, and libm's scalar one took 5.9 ms
  against 0.9 ms for 819k scores): in float64 for float32 scores (relative error < 1e-10), in
  float32 for bfloat16 scores (< 1e-6; bfloat16's rounding step is 4e-3). Both tested.

Plain numpy arrays in, float32 or float64 (tests check the closed form in float64).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_BLOCK = 256  # rows per parallel task where a task keeps partial sums


@njit(parallel=True, nogil=True, cache=True, fastmath=True)  # fastmath: vectorised dot products
def gather_operands(user, tweet, rel, bu, bt, br, neg_t, neg_u, x, y, pos, rt):  # pragma: no cover - numba
    """x[0, i] = user[bu[i]] + rel[br[i]], x[1, i] = tweet[bt[i]] (i < B), with the dots of
    :func:`row_dots` on the way (pos[i], rt[i]); y[0, k] = tweet[neg_t[k]], y[1, k] = user[neg_u[k]]
    (k < M). x: [2, B, d], y: [2, M, d]."""
    B = bu.shape[0]
    M = neg_t.shape[0]
    d = user.shape[1]
    for i in prange(B + M):
        if i < B:
            u, t, r = bu[i], bt[i], br[i]
            p = np.float32(0.0)
            s = np.float32(0.0)
            for j in range(d):
                q = user[u, j] + rel[r, j]
                v = tweet[t, j]
                x[0, i, j] = q
                x[1, i, j] = v
                p += q * v
                s += rel[r, j] * v
            pos[i] = p
            rt[i] = s
        else:
            k = i - B
            a, b = neg_t[k], neg_u[k]
            for j in range(d):
                y[0, k, j] = tweet[a, j]
                y[1, k, j] = user[b, j]


@njit(parallel=True, nogil=True, cache=True)
def select_edges(rows, rows_f, idx, bu, bt, br, bw):  # pragma: no cover - numba
    """The edges at positions idx of packed rows ([E, 4] int32: user, tweet, relation, weight bits;
    ``rows_f`` the same memory as float32) into bu, bt, br (int64) and bw (float32)."""
    for i in prange(idx.shape[0]):
        e = idx[i]
        bu[i] = rows[e, 0]
        bt[i] = rows[e, 1]
        br[i] = rows[e, 2]
        bw[i] = rows_f[e, 3]


@njit(parallel=True, nogil=True, cache=True)
def pack_edges(users, tweets, rels, weight_bits, positions, rows):  # pragma: no cover - numba
    """rows[i] = (user, tweet, relation, weight bits) of edge positions[i], or of edge i when
    ``positions`` is empty (:class:`graph.embed.data.PackedEdges`)."""
    take = positions.shape[0] > 0
    for i in prange(rows.shape[0]):
        e = positions[i] if take else np.int64(i)
        rows[i, 0] = users[e]
        rows[i, 1] = tweets[e]
        rows[i, 2] = rels[e]
        rows[i, 3] = weight_bits[e]


@njit(inline="always")
def _bf16(bits):  # pragma: no cover - numba
    """The bfloat16 nearest to the float32 with these bits (ties to even), as its uint16 bits."""
    v = np.int64(bits)
    return np.uint16((v + 0x7FFF + ((v >> 16) & 1)) >> 16)


@njit(parallel=True, nogil=True, cache=True, fastmath=True)
def row_dots(x, rel, br, pos, rt):  # pragma: no cover - numba
    """pos[i] = x[0, i] . x[1, i] ((u + r)^T t); rt[i] = rel[br[i]] . x[1, i] (r^T t)."""
    d = x.shape[2]
    for i in prange(x.shape[1]):
        r = br[i]
        p = x.dtype.type(0)
        s = x.dtype.type(0)
        for j in range(d):
            t = x[1, i, j]
            p += x[0, i, j] * t
            s += rel[r, j] * t
        pos[i] = p
        rt[i] = s


@njit(inline="always")
def _positive_row(dx0, dx1, x, i, gp, g, r_vec, out, acc_r):  # pragma: no cover - numba
    """Row i of :func:`positive_grads`, its products' gradients given as float rows dx0, dx1."""
    for j in range(x.shape[2]):
        t = x[1, i, j]
        du = dx0[j] + gp * t
        out[1, i, j] = dx1[j] + gp * x[0, i, j] + g * r_vec[j]  # (reads dx1[j] before out may overwrite it)
        out[0, i, j] = du
        acc_r[j] += du + g * t


@njit(parallel=True, nogil=True, cache=True)
def positive_grads(dx, x, gpos, gu, rel, br, out, drel_parts):  # pragma: no cover - numba
    """From dx ([2, B, d], the products' gradients with respect to x = [q; t]) to

    out[0] = du = dx[0] + gpos * t;  out[1] = dt = dx[1] + gpos * q + gu * r;  dr = du + gu * t,

    with q = x[0] = u + r, t = x[1], r = rel[br], gpos / gu the gradients of the positive score
    and of the user corruptions' r^T t terms (``out`` may be ``dx``). dr is summed per relation
    into drel_parts[block, relation] (one slice per block of _BLOCK rows; the caller adds them).
    """
    B = dx.shape[1]
    for b in prange((B + _BLOCK - 1) // _BLOCK):
        acc = drel_parts[b]
        acc[:] = 0
        for i in range(b * _BLOCK, min(B, (b + 1) * _BLOCK)):
            r = br[i]
            _positive_row(dx[0, i], dx[1, i], x, i, gpos[i], gu[i], rel[r], out, acc[r])


@njit(parallel=True, nogil=True, cache=True)
def positive_grads_bf16(dx, x, gpos, gu, rel, br, out, drel_parts):  # pragma: no cover - numba
    """:func:`positive_grads` with dx in bfloat16, given as its bits (uint16 [2, B, d]); ``out`` float32."""
    B = dx.shape[1]
    d = dx.shape[2]
    for b in prange((B + _BLOCK - 1) // _BLOCK):
        acc = drel_parts[b]
        acc[:] = 0
        bits = np.empty((2, d), np.uint32)
        vals = bits.view(np.float32)  # the same bytes: bits -> float32 without a scalar bit cast
        for i in range(b * _BLOCK, min(B, (b + 1) * _BLOCK)):
            for j in range(d):
                bits[0, j] = np.uint32(dx[0, i, j]) << 16
                bits[1, j] = np.uint32(dx[1, i, j]) << 16
            r = br[i]
            _positive_row(vals[0], vals[1], x, i, gpos[i], gu[i], rel[r], out, acc[r])


def _make_score_row(ft):
    """The score row pass in floating type ``ft`` (np.float64 or np.float32): every constant and
    accumulator has that type, so the float32 variant runs 16 lanes per vector instead of 8."""
    c = ft  # typed constants: numba freezes these globals with their numpy type

    @njit(inline="always")
    def exp_neg(a):  # pragma: no cover - numba
        """exp(-a) for a >= 0: Taylor series of exp(-a / 256), then squared 8 times. Beyond a = 64
        it returns exp(-64) = 1.6e-28 (sigmoid(-a) and softplus(-a) are below that there)."""
        x = min(a, c(64.0)) * c(1.0 / 256.0)
        p = c(1.0) - x * (c(1.0) - x * c(0.5) * (c(1.0) - x * c(1.0 / 3.0) * (c(1.0) - x * c(0.25) * (c(1.0) - x * c(0.2) * (
            c(1.0) - x * c(1.0 / 6.0) * (c(1.0) - x * c(1.0 / 7.0) * (c(1.0) - x * c(0.125) * (c(1.0) - x * c(1.0 / 9.0)))))))))
        for _ in range(8):
            p = p * p
        return p

    @njit(inline="always")
    def log1p_unit(e):  # pragma: no cover - numba
        """log(1 + e) for e in [0, 1]: 2 atanh(z), z = e / (2 + e) <= 1/3, by its series."""
        z = e / (c(2.0) + e)
        z2 = z * z
        return c(2.0) * z * (c(1.0) + z2 * (c(1.0 / 3.0) + z2 * (c(0.2) + z2 * (c(1.0 / 7.0) + z2 * (c(1.0 / 9.0) + z2 * (
            c(1.0 / 11.0) + z2 * (c(1.0 / 13.0) + z2 * (c(1.0 / 15.0) + z2 * c(1.0 / 17.0)))))))))

    @njit(inline="always")
    def score_row(vals, row, P, rt, k, gu, loss_rows):  # pragma: no cover - numba
        """Row ``row`` of :func:`score_grads`, in place: the scores ``vals`` (a float row) become G."""
        user_side = row >= P
        shift = c(rt[row - P]) if user_side else c(0.0)
        kk = c(k)
        acc = c(0.0)
        gs = c(0.0)
        for j in range(vals.shape[0]):
            s = c(vals[j]) + shift
            e = exp_neg(abs(s))
            r = c(1.0) / (c(1.0) + e)
            acc += max(s, c(0.0)) + log1p_unit(e)  # softplus(s) = log(1 + e^s)
            g = (r if s >= c(0.0) else e * r) * kk  # k * sigmoid(s)
            vals[j] = g
            gs += g
        loss_rows[row] = acc
        if user_side:
            gu[row - P] = gs

    return score_row


_score_row = _make_score_row(np.float64)  # float32 scores: relative error < 1e-10 (tested)
_score_row32 = _make_score_row(np.float32)  # bfloat16 scores: relative error < 1e-6, far below bfloat16's 4e-3 step (tested)
_SCORE_BLOCK = 64  # score rows per parallel task


@njit(parallel=True, nogil=True, cache=True, fastmath=True)
def score_grads(S, rt, k, G, gu, loss_rows):  # pragma: no cover - numba
    """The negatives' part of the loss and its gradient, for one group of chunks.

    S: [2P, N] scores of P positives against their chunks' shared negatives, rows [0, P) the
    corrupted tweets and rows [P, 2P) the corrupted users (without their r^T t term, ``rt`` [P]).
    Writes G = k * sigmoid(s) (G may be S), loss_rows[row] = sum of softplus(s) over the row, and
    gu[i] = sum of G over user-corruption row P + i (the gradient of r^T t).
    """
    R = S.shape[0]
    for b in prange((R + _SCORE_BLOCK - 1) // _SCORE_BLOCK):
        for row in range(b * _SCORE_BLOCK, min(R, (b + 1) * _SCORE_BLOCK)):
            if G is not S:  # one array in place: with a separate source row the loop did not vectorise (4.6x slower)
                G[row] = S[row]
            _score_row(G[row], row, R // 2, rt, k, gu, loss_rows)


@njit(parallel=True, nogil=True, cache=True, fastmath=True)
def score_grads_bf16(S, rt, k, G, gu, loss_rows):  # pragma: no cover - numba
    """:func:`score_grads` for bfloat16 S and G, given as their bits (uint16 arrays): G is rounded to
    the nearest bfloat16, ties to even (what torch's conversion does). The arithmetic is float32:
    twice the lanes of float64 (0.66 instead of 1.1 ms for 819k scores, 2 threads), with errors
    far below bfloat16's rounding step."""
    R, N = S.shape
    for b in prange((R + _SCORE_BLOCK - 1) // _SCORE_BLOCK):
        bits = np.empty(N, np.uint32)
        vals = bits.view(np.float32)  # the same bytes: float32 <-> bits without a scalar bit cast
        for row in range(b * _SCORE_BLOCK, min(R, (b + 1) * _SCORE_BLOCK)):
            for j in range(N):
                bits[j] = np.uint32(S[row, j]) << 16
            _score_row32(vals, row, R // 2, rt, k, gu, loss_rows)
            for j in range(N):
                G[row, j] = _bf16(bits[j])


def relation_grad_parts(B: int, num_relations: int, d: int, dtype) -> np.ndarray:
    """The scratch array :func:`positive_grads` sums into."""
    return np.empty(((B + _BLOCK - 1) // _BLOCK, num_relations, d), dtype=dtype)
