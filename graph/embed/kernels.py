"""Numba kernels of the training step: the row-wise passes around the three batched products.

Each is one parallel pass over a batch's rows that replaces several torch passes (and their
temporaries) over [B, d] arrays:

* :func:`gather_operands` -- the stacked operands x = [u + r; t] and y = [corrupted tweets;
  corrupted users] straight from the node tables (four ``index_select``s, a relation gather and
  an add before);
* :func:`row_dots` -- the positives' scores (u + r)^T t and the terms r^T t of their user
  corruptions;
* :func:`positive_grads` -- the positives' gradients with respect to u and t, in place on the
  products' output, and the per-relation sums of the gradient with respect to r (four
  ``addcmul``s and an ``index_add_`` before).

Plain numpy arrays in, float32 or float64 (tests check the closed form in float64).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_BLOCK = 256  # rows per parallel task where a task keeps partial sums


@njit(parallel=True, nogil=True, cache=True)
def gather_operands(user, tweet, rel, bu, bt, br, neg_t, neg_u, x, y):  # pragma: no cover - numba
    """x[0, i] = user[bu[i]] + rel[br[i]], x[1, i] = tweet[bt[i]] (i < B);
    y[0, k] = tweet[neg_t[k]], y[1, k] = user[neg_u[k]] (k < M). x: [2, B, d], y: [2, M, d]."""
    B = bu.shape[0]
    M = neg_t.shape[0]
    d = user.shape[1]
    for i in prange(B + M):
        if i < B:
            u, t, r = bu[i], bt[i], br[i]
            for j in range(d):
                x[0, i, j] = user[u, j] + rel[r, j]
                x[1, i, j] = tweet[t, j]
        else:
            k = i - B
            a, b = neg_t[k], neg_u[k]
            for j in range(d):
                y[0, k, j] = tweet[a, j]
                y[1, k, j] = user[b, j]


@njit(parallel=True, nogil=True, cache=True)
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


@njit(parallel=True, nogil=True, cache=True)
def positive_grads(dx, x, gpos, gu, rel, br, drel_parts):  # pragma: no cover - numba
    """In place on dx ([2, B, d], the products' gradients with respect to x = [q; t]):

    du = dx[0] + gpos * t;  dt = dx[1] + gpos * q + gu * r;  dr = du + gu * t,

    with q = x[0] = u + r, t = x[1], r = rel[br], gpos / gu the gradients of the positive score
    and of the user corruptions' r^T t terms. dr is summed per relation into
    drel_parts[block, relation] (one slice per block of _BLOCK rows; the caller adds the slices).
    """
    B = dx.shape[1]
    d = dx.shape[2]
    for b in prange((B + _BLOCK - 1) // _BLOCK):
        acc = drel_parts[b]
        acc[:] = 0
        for i in range(b * _BLOCK, min(B, (b + 1) * _BLOCK)):
            r = br[i]
            gp = gpos[i]
            g = gu[i]
            for j in range(d):
                t = x[1, i, j]
                du = dx[0, i, j] + gp * t
                dx[0, i, j] = du
                dx[1, i, j] = dx[1, i, j] + gp * x[0, i, j] + g * rel[r, j]
                acc[r, j] += du + g * t


def relation_grad_parts(B: int, num_relations: int, d: int, dtype) -> np.ndarray:
    """The scratch array :func:`positive_grads` sums into."""
    return np.empty(((B + _BLOCK - 1) // _BLOCK, num_relations, d), dtype=dtype)
