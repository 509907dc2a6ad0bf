"""The TwHIN translation model: score f(u, t, r) = (u + r)^T t and its logistic loss.

Pure functions of tensors, so tests can check them against a per-edge reference without a
graph or an optimiser. Shapes: ``d`` embedding width, ``B`` positives, ``C`` chunk size,
``n`` chunks, ``Nt``/``Nu`` tweet/user negatives per chunk.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from graph.embed import kernels


def score(u: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """f(u, t, r) = (u + r)^T t row by row: [..., d] x3 -> [...]."""
    return ((u + r) * t).sum(-1)


def chunk_scores(u: torch.Tensor, r: torch.Tensor, t: torch.Tensor, neg_t: torch.Tensor, neg_u: torch.Tensor):
    """Scores of positives and of their shared negatives, chunk by chunk.

    u, r, t: [n, C, d] (positive edges, grouped in chunks); neg_t: [n, Nt, d]; neg_u: [n, Nu, d].
    Returns ``pos`` [n, C], ``tweet_neg`` [n, C, Nt] = f(u, t', r), ``user_neg`` [n, C, Nu] = f(u', t, r).
    f(u', t, r) = u'^T t + r^T t, so both negative blocks are one batched matrix product.
    """
    q = u + r  # [n, C, d]
    pos = (q * t).sum(-1)  # [n, C]
    tweet_neg = torch.bmm(q, neg_t.transpose(1, 2))  # [n, C, Nt]
    user_neg = torch.bmm(t, neg_u.transpose(1, 2)) + (r * t).sum(-1, keepdim=True)  # [n, C, Nu]
    return pos, tweet_neg, user_neg


def logistic_loss(pos: torch.Tensor, negs: list[torch.Tensor], weight: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Summed negative log-likelihood of the objective, over positives.

    Per positive e with type weight w: ``-w log sigma(f(e)) - agg_{e' in N(e)} log sigma(-f(e'))``,
    agg = mean or sum over all of e's negatives (the blocks in ``negs`` together).
    pos: [...]; negs: blocks [..., N_i]; weight: [...]. Note -log sigma(x) = softplus(-x).
    """
    total = (weight * F.softplus(-pos)).sum()
    n_neg = sum(n.shape[-1] for n in negs)
    neg_sum = sum(F.softplus(n).sum() for n in negs)
    return total + (neg_sum / n_neg if reduction == "mean" else neg_sum)


def chunk_groups(B: int, chunk_size: int) -> list:
    """``(positive rows, negative chunks, n chunks, chunk length)`` for the full chunks and the
    shorter last one: positives [i*C, (i+1)*C) share negatives i."""
    n_full = B // chunk_size
    groups = []
    if n_full:
        groups.append((slice(0, n_full * chunk_size), slice(0, n_full), n_full, chunk_size))
    if B % chunk_size:
        groups.append((slice(n_full * chunk_size, B), slice(n_full, n_full + 1), 1, B % chunk_size))
    return groups


def batch_loss(u: torch.Tensor, r: torch.Tensor, t: torch.Tensor, weight: torch.Tensor,
               neg_t: torch.Tensor, neg_u: torch.Tensor, chunk_size: int, reduction: str = "mean") -> torch.Tensor:
    """Mean loss per positive of a batch.

    u, r, t: [B, d]; weight: [B]; neg_t: [n, Nt, d] and neg_u: [n, Nu, d] with n = ceil(B / chunk_size):
    positives [i*C, (i+1)*C) share negatives i (the last chunk may be shorter).
    """
    B, d = u.shape
    groups = chunk_groups(B, chunk_size)
    total = None
    for rows, chunks, n, c in groups:
        pos, tneg, uneg = chunk_scores(u[rows].view(n, c, d), r[rows].view(n, c, d), t[rows].view(n, c, d),
                                       neg_t[chunks], neg_u[chunks])
        part = logistic_loss(pos, [tneg, uneg], weight[rows].view(n, c), reduction)
        total = part if total is None else total + part
    return total / B


def _bits(t: torch.Tensor) -> np.ndarray:
    """The bits of a bfloat16 tensor as a uint16 numpy array (same memory)."""
    return t.view(torch.int16).numpy().view(np.uint16)


def stacked_loss_and_grads(x: torch.Tensor, y: torch.Tensor, rel: torch.Tensor, rel_ids: torch.Tensor, weight: torch.Tensor,
                           chunk_size: int, reduction: str = "mean", matmul_dtype: torch.dtype | None = None, dots=None,
                           overwrite_x: bool = False):
    """:func:`batch_loss` and its gradients in closed form, without autograd (the training hot path).

    Both corruptions are scored by one batched matrix product: the positives' left operands are
    stacked as ``x`` = [2, B, d] with x[0] = q = u + r and x[1] = t, the chunks' negatives as
    ``y`` = [2, n, N, d] with y[0] the corrupted tweets and y[1] the corrupted users (as many of
    each), so S = x y^T is [2n, C, N]: S[0] = f(u, t', r) and S[1] + r^T t = f(u', t, r). The
    backward pass is two more batched products: dx = G y and dy = G^T x, G = dLoss/dS.
    ``rel``: [R, d] the relation vectors and ``rel_ids``: [B] each positive's relation, so
    r = rel[rel_ids]; ``weight``: [B]; positives [i*C, (i+1)*C) share negatives i (the last chunk
    may be shorter). The row-wise passes before and after the products are numba kernels
    (:mod:`graph.embed.kernels`). ``dots``: the positives' (u + r)^T t and r^T t ([B] each) where the
    caller has them already (:func:`graph.embed.kernels.gather_operands` computes them).
    ``overwrite_x``: the gradients du, dt may be written into x's memory (x is then lost): no fresh
    [2, B, d] buffer (measured in isolation: 0.59 instead of 2.4 ms for the positives' pass, whose
    output otherwise lands on newly mapped pages).

    ``matmul_dtype=torch.bfloat16`` runs the three batched products on bfloat16 copies of x and y
    (float32 accumulation inside the products): about twice their throughput on CPUs with native
    bfloat16 dot products (AVX512_BF16, AMX), at bfloat16's 8-bit mantissa in the products' inputs
    and outputs. S and G stay bfloat16 between the products (the score kernel reads and writes
    their bits); dx and dy come back in x's dtype, as do the positives' scores and gradients.
    None: x's dtype throughout.

    Returns ``(loss, du, drel, dt, dy)``: the mean loss per positive (0-d) and its gradients with
    respect to u and t ([B, d] each; du and dt are views of one buffer), rel ([R, d]) and y
    ([2, n, N, d]). With s = sigma: d/d pos = -w s(-pos) / B and d/d neg = s(neg) * k / B
    (k = 1/#negatives for 'mean', 1 for 'sum'). Tested against autograd through :func:`batch_loss`.
    """
    _, B, d = x.shape
    N = y.shape[2]
    k = (1.0 / (2 * N) if reduction == "mean" else 1.0) / B
    xn, reln, idn = x.numpy(), rel.detach().numpy(), rel_ids.numpy()
    if dots is None:
        pos, rt = x.new_empty(B), x.new_empty(B)
        kernels.row_dots(xn, reln, idn, pos.numpy(), rt.numpy())
    else:
        pos, rt = dots
    loss = (weight * F.softplus(-pos)).sum()
    gpos = torch.sigmoid(-pos).mul_(weight).mul_(-1.0 / B)  # [B]
    low = matmul_dtype is not None and matmul_dtype != x.dtype
    xm, ym = (x.to(matmul_dtype), y.to(matmul_dtype)) if low else (x, y)
    dxm, dym = torch.empty_like(xm), torch.empty_like(ym)  # the products' gradients, in matmul_dtype
    gu_sum = x.new_empty(B)  # d/d(r.t) of the user-corrupted scores
    neg_loss = 0.0
    for rows, chunks, n, c in chunk_groups(B, chunk_size):
        xs = xm[:, rows].reshape(2 * n, c, d)  # a view unless the batch ends with a short chunk
        ys = ym[:, chunks].reshape(2 * n, N, d)
        S = torch.bmm(xs, ys.transpose(1, 2))  # [2n, c, N]; rows [0, n) corrupt the tweet, [n, 2n) the user
        loss_rows = np.empty(2 * n * c)
        if low:  # G = dLoss/dS straight into bfloat16, the next products' input
            G = torch.empty_like(S)
            kernels.score_grads_bf16(_bits(S).reshape(-1, N), rt[rows].numpy(), k, _bits(G).reshape(-1, N),
                                     gu_sum[rows].numpy(), loss_rows)
        else:
            G = S  # in place
            kernels.score_grads(S.numpy().reshape(-1, N), rt[rows].numpy(), k, G.numpy().reshape(-1, N), gu_sum[rows].numpy(),
                                loss_rows)
        neg_loss += loss_rows.sum()
        if n * c == B and ym.shape[1] == n:  # the whole batch in full chunks: write straight into the outputs
            torch.bmm(G, ys, out=dxm.view(2 * n, c, d))
            torch.bmm(G.transpose(1, 2), xs, out=dym.view(2 * n, N, d))
        else:
            dxm[:, rows] = torch.bmm(G, ys).view(2, n * c, d)
            dym[:, chunks] = torch.bmm(G.transpose(1, 2), xs).view(2, n, N, d)
    loss = (loss + k * B * neg_loss) / B
    parts = kernels.relation_grad_parts(B, len(rel), d, xn.dtype)
    if low:
        dx = x if overwrite_x else torch.empty_like(x)  # (the pass reads each element of x before writing it)
        kernels.positive_grads_bf16(_bits(dxm), xn, gpos.numpy(), gu_sum.numpy(), reln, idn, dx.numpy(), parts)
        dy = dym.to(x.dtype)
    else:
        dx, dy = dxm, dym
        kernels.positive_grads(dx.numpy(), xn, gpos.numpy(), gu_sum.numpy(), reln, idn, dx.numpy(), parts)
    return loss, dx[0], torch.from_numpy(parts.sum(0)), dx[1], dy
