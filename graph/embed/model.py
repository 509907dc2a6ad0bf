"""The TwHIN translation model: score f(u, t, r) = (u + r)^T t and its logistic loss.

Pure functions of tensors, so tests can check them against a per-edge reference without a
graph or an optimiser. Shapes: ``d`` embedding width, ``B`` positives, ``C`` chunk size,
``n`` chunks, ``Nt``/``Nu`` tweet/user negatives per chunk.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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


def batch_loss_and_grads(u: torch.Tensor, r: torch.Tensor, t: torch.Tensor, weight: torch.Tensor,
                         neg_t: torch.Tensor, neg_u: torch.Tensor, chunk_size: int, reduction: str = "mean"):
    """:func:`batch_loss` and its gradients in closed form, without autograd (the training hot path).

    Same arguments and shapes as :func:`batch_loss`. Returns ``(loss, du, dr, dt, dneg_t, dneg_u)``:
    the mean loss per positive (a 0-d tensor) and its gradients with respect to each argument
    (``dr`` per positive row, [B, d]). With s = sigma: d/d pos = -w s(-pos) / B and
    d/d neg = s(neg) * k / B (k = 1/#negatives for 'mean', 1 for 'sum'); the score gradients then
    flow through the same batched matrix products as the forward pass. Tested against autograd.
    """
    B, d = u.shape
    groups = chunk_groups(B, chunk_size)
    n_neg = neg_t.shape[1] + neg_u.shape[1]
    k = (1.0 / n_neg if reduction == "mean" else 1.0) / B
    q = u + r
    du = torch.empty_like(u)
    dt = torch.empty_like(t)
    dr = torch.empty_like(r)
    dneg_t = torch.empty_like(neg_t)
    dneg_u = torch.empty_like(neg_u)
    total = u.new_zeros(())
    for rows, chunks, n, c in groups:
        qc, tc, rc = q[rows].view(n, c, d), t[rows].view(n, c, d), r[rows]
        nt, nu = neg_t[chunks], neg_u[chunks]
        w = weight[rows]
        rt = (rc * t[rows]).sum(-1)
        pos = (q[rows] * t[rows]).sum(-1)  # [b]
        tneg = torch.bmm(qc, nt.transpose(1, 2))  # [n, c, Nt]
        uneg = torch.bmm(tc, nu.transpose(1, 2)).add_(rt.view(n, c, 1))  # [n, c, Nu]
        total = total + (w * F.softplus(-pos)).sum() + k * B * (F.softplus(tneg).sum() + F.softplus(uneg).sum())
        gpos = torch.sigmoid(-pos).mul_(w).mul_(-1.0 / B).unsqueeze(1)  # [b, 1]
        gt = torch.sigmoid(tneg).mul_(k)
        gu = torch.sigmoid(uneg).mul_(k)
        gu_sum = gu.sum(-1).view(-1, 1)  # [b, 1]: d/d(r.t) of the user-corrupted scores
        dq = torch.bmm(gt, nt).view(-1, d).addcmul_(gpos, t[rows])
        du[rows] = dq
        dr[rows] = dq.addcmul(gu_sum, t[rows])
        dt[rows] = torch.bmm(gu, nu).view(-1, d).addcmul_(gpos, q[rows]).addcmul_(gu_sum, rc)
        dneg_t[chunks] = torch.bmm(gt.transpose(1, 2), qc)
        dneg_u[chunks] = torch.bmm(gu.transpose(1, 2), tc)
    return total / B, du, dr, dt, dneg_t, dneg_u
