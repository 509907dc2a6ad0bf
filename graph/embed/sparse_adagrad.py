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
advanced-indexing gathers and two ``index_put_`` scatters, and reads and writes each touched
row of the weight and of the state once.

``--optimizer rowwise`` runs PyTorch-BigGraph's row-wise Adagrad in the same pass instead: one
accumulator per row (the mean of the squared gradient), so the state is [N] rather than [N, d]
-- half the tables' memory -- and the step reads and writes one cache line of state per row
instead of d / 16 of them. Those cold state rows were ~1 ms of a 10 ms training step on the
10M-edge benchmark graph (2 cores), and prefetching them hid at most 0.1-0.3 ms of it: the
random-row throughput of the memory system is the limit, so the bytes have to go.

The one difference from DGL's step: the square root. This pass takes the correctly rounded one
(the CPU's ``sqrt`` instruction); DGL's step runs torch's ``sqrt_``, which on CPU is MKL's vector
square root and differs from it in the last bit for some inputs (measured: ~13 % of elements). The
state therefore comes out bit-identical after an update and the weights within an ulp of the
update (~3 % of the elements of a step differ); tests hold the two to that. An earlier version
kept torch's square root for bit-identity in a separate pass; that cost two more passes over the
rows (2.3x the time of this one, measured on 1M x 128 tables).
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


@njit(nogil=True, cache=True)
def _group_rows(ids, slot, rows, starts, order):  # pragma: no cover - numba
    """Serial: distinct values of ``ids`` in order of first occurrence into ``rows``, their
    occurrence positions (ascending) into ``order``, CSR ``starts``; returns how many. ``slot``
    ([num nodes], all -1) maps a node to its distinct index meanwhile and is all -1 again after."""
    n = ids.shape[0]
    m = 0
    count = np.zeros(n + 1, np.int64)
    for p in range(n):
        v = ids[p]
        s = slot[v]
        if s < 0:
            s = m
            slot[v] = m
            rows[m] = v
            m += 1
        count[s + 1] += 1
    starts[0] = 0
    for i in range(m):
        starts[i + 1] = starts[i] + count[i + 1]
        count[i + 1] = starts[i]  # next free position of distinct row i
    for p in range(n):
        s = slot[ids[p]]
        order[count[s + 1]] = p
        count[s + 1] += 1
    for i in range(m):
        slot[rows[i]] = -1
    return m


class RowGrouper:
    """:func:`group_occurrences` for the fused step, without a sort: one serial numba pass with a
    node -> distinct-index table kept between batches (int32, one per node table). Rows come in
    order of first occurrence rather than sorted, which the fused update does not depend on (each
    row is updated from its own occurrences only). ~0.05 ms instead of ~0.6 ms per table and batch
    of 9,000 ids."""

    def __init__(self, num_nodes: int):
        self.slot = np.full(num_nodes, -1, dtype=np.int32)

    @staticmethod
    def _buffers(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, starts, order)`` for :func:`_group_rows` over ``n`` ids."""
        return np.empty(n, np.int64), np.empty(n + 1, np.int64), np.empty(n, np.int64)

    @staticmethod
    def _result(bufs, m: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rows, starts, order = bufs
        return torch.from_numpy(rows[:m]), torch.from_numpy(starts[:m + 1]), torch.from_numpy(order)

    def group(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(rows, starts, order)``: as :func:`group_occurrences`'s ``(unique, starts, order)``,
        with the distinct rows in order of first occurrence."""
        bufs = self._buffers(len(ids))
        return self._result(bufs, _group_rows(ids.numpy(), self.slot, *bufs))


@njit(parallel=True, nogil=True, cache=True)
def _group_two(ids_a, slot_a, rows_a, starts_a, order_a, ids_b, slot_b, rows_b, starts_b, order_b, m):  # pragma: no cover - numba
    """:func:`_group_rows` of two tables at once, one per thread; the counts go to m[0], m[1]."""
    for k in prange(2):
        if k == 0:
            m[0] = _group_rows(ids_a, slot_a, rows_a, starts_a, order_a)
        else:
            m[1] = _group_rows(ids_b, slot_b, rows_b, starts_b, order_b)


def group_two(a: "RowGrouper", ids_a: torch.Tensor, b: "RowGrouper", ids_b: torch.Tensor):
    """``(a.group(ids_a), b.group(ids_b))`` computed side by side (the passes are serial)."""
    bufs_a, bufs_b = RowGrouper._buffers(len(ids_a)), RowGrouper._buffers(len(ids_b))
    m = np.empty(2, np.int64)
    _group_two(ids_a.numpy(), a.slot, *bufs_a, ids_b.numpy(), b.slot, *bufs_b, m)
    return RowGrouper._result(bufs_a, int(m[0])), RowGrouper._result(bufs_b, int(m[1]))


_BLOCK = 32  # rows per parallel task: one gradient buffer per task


@njit(inline="always")
def _row_gradient(acc, i, starts, order, grad_a, grad_b):  # pragma: no cover - numba
    """acc = the sum of distinct row i's occurrence gradients, in occurrence order; returns their count."""
    n_a = grad_a.shape[0]
    acc[:] = 0.0
    for k in range(starts[i], starts[i + 1]):
        o = order[k]
        if o < n_a:
            for j in range(acc.shape[0]):
                acc[j] += grad_a[o, j]
        else:
            for j in range(acc.shape[0]):
                acc[j] += grad_b[o - n_a, j]
    return np.float32(starts[i + 1] - starts[i])


@njit(parallel=True, nogil=True, cache=True)
def _adagrad_rows(weight, state, rows, starts, order, grad_a, grad_b, lr, eps):  # pragma: no cover - numba
    """Per distinct row i (table row rows[i]): g = mean of its occurrences' gradients, summed in
    occurrence order; state += g * g; weight -= (lr * g) / sqrt(state + eps)."""
    d = weight.shape[1]
    m = rows.shape[0]
    for b in prange((m + _BLOCK - 1) // _BLOCK):
        acc = np.empty(d, np.float32)
        for i in range(b * _BLOCK, min(m, (b + 1) * _BLOCK)):
            cnt = _row_gradient(acc, i, starts, order, grad_a, grad_b)
            r = rows[i]
            for j in range(d):
                g = acc[j] / cnt
                s = state[r, j] + g * g
                state[r, j] = s
                weight[r, j] = weight[r, j] - (lr * g) / np.sqrt(s + eps)


@njit(parallel=True, nogil=True, cache=True)
def _rowwise_adagrad_rows(weight, state, rows, starts, order, grad_a, grad_b, lr, eps):  # pragma: no cover - numba
    """Row-wise Adagrad (PyTorch-BigGraph's): one accumulator per row. Per distinct row i: g = mean
    of its occurrences' gradients; state[r] += mean(g * g); weight[r] -= lr * g / sqrt(state[r] + eps).

    The sum of squares runs in four interleaved partial sums in a fixed order, not as a fast-math
    reduction: with reassociation allowed its last bits changed from one process to the next
    (measured: 2 different results in 6 runs on identical input; found later: the process that
    compiled the kernel got other bits than the processes that loaded it from Numba's cache),
    which broke "same seed, same arrays". That costs ~0.3 ms per table and step (1.13 -> 1.45 ms
    for 9,800 cold rows)."""
    d = weight.shape[1]
    m = rows.shape[0]
    full = d - d % 4
    for b in prange((m + _BLOCK - 1) // _BLOCK):
        acc = np.empty(d, np.float32)
        for i in range(b * _BLOCK, min(m, (b + 1) * _BLOCK)):
            inv = np.float32(1.0) / _row_gradient(acc, i, starts, order, grad_a, grad_b)
            for j in range(d):
                acc[j] *= inv
            s0 = s1 = s2 = s3 = np.float32(0.0)
            for j in range(0, full, 4):
                s0 += acc[j] * acc[j]
                s1 += acc[j + 1] * acc[j + 1]
                s2 += acc[j + 2] * acc[j + 2]
                s3 += acc[j + 3] * acc[j + 3]
            for j in range(full, d):
                s0 += acc[j] * acc[j]
            r = rows[i]
            s = state[r] + ((s0 + s1) + (s2 + s3)) / np.float32(d)
            state[r] = s
            step = lr / np.sqrt(s + eps)
            for j in range(d):
                weight[r, j] -= step * acc[j]


def fused_adagrad_(weight: torch.Tensor, state: torch.Tensor, rows: torch.Tensor, starts: torch.Tensor, order: torch.Tensor,
                   grad_a: torch.Tensor, grad_b: torch.Tensor, lr: float, eps: float) -> None:
    """In-place SparseAdagrad step on ``weight`` ([N, d] float32, contiguous) and its ``state``:
    element-wise ([N, d], DGL's layout) or row-wise ([N], :func:`_rowwise_adagrad_rows`).

    ``rows``, ``starts``, ``order``: from :func:`group_occurrences` over the occurrence ids; the
    gradient of occurrence ``o`` is ``grad_a[o]`` if ``o < len(grad_a)`` else ``grad_b[o - len(grad_a)]``.
    """
    kernel = _adagrad_rows if state.dim() == 2 else _rowwise_adagrad_rows
    kernel(weight.numpy(), state.numpy(), rows.numpy(), starts.numpy(), order.numpy(),
           np.ascontiguousarray(grad_a.numpy()), np.ascontiguousarray(grad_b.numpy()), np.float32(lr), np.float32(eps))


def rowwise_adagrad_reference_(weight: torch.Tensor, state: torch.Tensor, ids: torch.Tensor, grads: torch.Tensor,
                               lr: float, eps: float) -> None:
    """Row-wise Adagrad in plain torch (tests hold the fused kernel to it): ``grads[k]`` is the
    gradient of occurrence ``ids[k]``; each distinct row takes the mean of its occurrences."""
    uniq, inv = torch.unique(ids, return_inverse=True)
    g = torch.zeros(len(uniq), weight.shape[1], dtype=torch.float64).index_add_(0, inv, grads.double())
    g /= torch.bincount(inv, minlength=len(uniq)).unsqueeze(1)
    s = state[uniq].double() + g.pow(2).mean(1)
    state[uniq] = s.float()
    weight[uniq] = (weight[uniq].double() - lr * g / (s + eps).sqrt().unsqueeze(1)).float()
