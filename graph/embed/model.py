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


def batch_loss(u: torch.Tensor, r: torch.Tensor, t: torch.Tensor, weight: torch.Tensor,
               neg_t: torch.Tensor, neg_u: torch.Tensor, chunk_size: int, reduction: str = "mean") -> torch.Tensor:
    """Mean loss per positive of a batch.

    u, r, t: [B, d]; weight: [B]; neg_t: [n, Nt, d] and neg_u: [n, Nu, d] with n = ceil(B / chunk_size):
    positives [i*C, (i+1)*C) share negatives i (the last chunk may be shorter).
    """
    B, d = u.shape
    n_full = B // chunk_size
    groups = []
    if n_full:
        groups.append((slice(0, n_full * chunk_size), slice(0, n_full), n_full, chunk_size))
    if B % chunk_size:
        groups.append((slice(n_full * chunk_size, B), slice(n_full, n_full + 1), 1, B % chunk_size))
    total = None
    for rows, chunks, n, c in groups:
        pos, tneg, uneg = chunk_scores(u[rows].view(n, c, d), r[rows].view(n, c, d), t[rows].view(n, c, d),
                                       neg_t[chunks], neg_u[chunks])
        part = logistic_loss(pos, [tneg, uneg], weight[rows].view(n, c), reduction)
        total = part if total is None else total + part
    return total / B
