"""Row grouping and a fused sparse Adagrad step for the node tables (``--optimizer fused``).

A training batch touches a node row several times (as a positive endpoint and as a shared
negative). :func:`group_occurrences` sorts a table's occurrence ids once per batch and returns the
distinct rows plus, for each, its occurrences in order (a CSR over a stable argsort).
:func:`fused_adagrad_` then does, in one parallel pass over the distinct rows (a row is owned by
one loop iteration, so no write conflicts and the result does not depend on the thread count):

* sum the row's per-occurrence gradients in occurrence order (the order ``index_add_`` uses),
* divide by the number of occurrences (DGL's SparseAdagrad averages a row's duplicates),
* ``state += g * g``; ``weight -= (lr * g) / sqrt(state + eps)`` -- DGL's
  ``SparseAdagrad.update`` operation for operation, in float32,

directly on a ``dgl.nn.NodeEmbedding``'s weight and its ``optm_state[0]`` (DGL's state layout is
kept, so checkpoints and DGL's optimiser are interchangeable). It replaces, per table, DGL's
trace bookkeeping, a second ``unique``, a zero-filled gradient buffer, ``index_add_``, two
advanced-indexing gathers and two ``index_put_`` scatters. Tested bit-identical to DGL's step.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit, prange


def group_occurrences(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Distinct values of ``ids`` and where each occurs.

    Returns ``(unique, inverse, order, starts)``: ``unique`` sorted distinct ids [m];
    ``inverse`` [len(ids)] with ``unique[inverse] == ids``; ``order`` [len(ids)] occurrence positions
    sorted by id, ascending positions within an id (stable); ``starts`` [m + 1] so that the
    occurrences of ``unique[i]`` are ``order[starts[i]:starts[i + 1]]``. All int64.
    """
    sorted_ids, order = torch.sort(ids, stable=True)
    new = torch.ones(len(ids), dtype=torch.bool)
    if len(ids) > 1:
        torch.ne(sorted_ids[1:], sorted_ids[:-1], out=new[1:])
    first = new.nonzero().squeeze(1)
    unique = sorted_ids.index_select(0, first)
    inverse = torch.empty_like(ids).scatter_(0, order, new.cumsum(0).sub_(1))
    starts = torch.cat([first, torch.tensor([len(ids)], dtype=torch.int64)])
    return unique, inverse, order, starts


@njit(parallel=True, nogil=True, cache=True)
def _accumulate_and_update_state(state, rows, starts, order, grad_a, grad_b, eps, g_out, denom_out):  # pragma: no cover - numba
    """Per distinct row i: g = mean of its occurrences' gradients (summed in occurrence order);
    state[row] += g * g; g_out[i] = g; denom_out[i] = state[row] + eps."""
    n_a = grad_a.shape[0]
    d = state.shape[1]
    for i in prange(rows.shape[0]):
        acc = g_out[i]
        acc[:] = 0.0
        for k in range(starts[i], starts[i + 1]):
            o = order[k]
            if o < n_a:
                for j in range(d):
                    acc[j] += grad_a[o, j]
            else:
                for j in range(d):
                    acc[j] += grad_b[o - n_a, j]
        cnt = np.float32(starts[i + 1] - starts[i])
        r = rows[i]
        for j in range(d):
            g = acc[j] / cnt
            acc[j] = g
            s = state[r, j] + g * g
            state[r, j] = s
            denom_out[i, j] = s + eps


@njit(parallel=True, nogil=True, cache=True)
def _apply_update(weight, rows, g, std, lr):  # pragma: no cover - numba
    d = weight.shape[1]
    for i in prange(rows.shape[0]):
        r = rows[i]
        for j in range(d):
            weight[r, j] = weight[r, j] - (lr * g[i, j]) / std[i, j]


def fused_adagrad_(weight: torch.Tensor, state: torch.Tensor, rows: torch.Tensor, starts: torch.Tensor, order: torch.Tensor,
                   grad_a: torch.Tensor, grad_b: torch.Tensor, lr: float, eps: float) -> None:
    """In-place SparseAdagrad step on ``weight`` / ``state`` ([N, d] float32, contiguous).

    ``rows``, ``starts``, ``order``: from :func:`group_occurrences` over the occurrence ids; the
    gradient of occurrence ``o`` is ``grad_a[o]`` if ``o < len(grad_a)`` else ``grad_b[o - len(grad_a)]``.
    The square root is torch's (``sqrt_``, MKL's vector sqrt, which is not always the correctly
    rounded one that numba/numpy compute), as in DGL's optimiser, so the step is bit-identical.
    """
    m, d = len(rows), weight.shape[1]
    g = torch.empty(m, d)
    denom = torch.empty(m, d)
    rows_np = rows.numpy()
    _accumulate_and_update_state(state.numpy(), rows_np, starts.numpy(), order.numpy(), np.ascontiguousarray(grad_a.numpy()),
                                 np.ascontiguousarray(grad_b.numpy()), np.float32(eps), g.numpy(), denom.numpy())
    denom.sqrt_()
    _apply_update(weight.numpy(), rows_np, g.numpy(), denom.numpy(), np.float32(lr))
