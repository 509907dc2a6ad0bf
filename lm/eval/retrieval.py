"""The pairs task: retrieve a tweet's socially similar partner among all tweets (MetricBERT's metrics).

For each query pair (a, b), every tweet of the pool except ``a`` itself is scored by cosine
similarity to ``a``; the rank of ``b`` gives MRR, HR@10, HR@100 and the mean percentile rank
(MPR: (rank - 1) / (pool - 2), 0 best, 0.5 chance). Other true partners of ``a`` count as
competitors (the raw, unfiltered setting).

Pairs come either from a pair file (``--pairs``; only meaningful when the LM never trained on
them) or, by default, from :func:`heldout_pairs`: test tweets engaged by at least
``min_common_users`` of the same users in the held-out engagements, which no stage trained on.
"""

from __future__ import annotations

import logging

import numpy as np

from lm.eval.metrics import positive_ranks, ranking_metrics

log = logging.getLogger(__name__)


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def retrieval_ranks(emb: np.ndarray, queries: np.ndarray, targets: np.ndarray, pool: np.ndarray | None = None,
                    chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Rank of ``targets[i]`` among ``pool`` (default: all rows) minus ``queries[i]``, by cosine.

    Returns ``(ranks float64 [Q], candidates int [Q])`` where candidates counts the pool
    without the query (the target included). Ties count half (see :mod:`lm.eval.metrics`).
    """
    e = l2_normalize(emb)
    queries = np.asarray(queries, dtype=np.int64)
    targets = np.asarray(targets, dtype=np.int64)
    pool = np.arange(len(e)) if pool is None else np.unique(np.asarray(pool, dtype=np.int64))
    if not np.isin(targets, pool).all():
        raise ValueError("every target must be in the pool")
    ep = e[pool]  # [P, D]
    ranks = np.empty(len(queries), dtype=np.float64)
    cands = np.empty(len(queries), dtype=np.int64)
    for s in range(0, len(queries), chunk):
        q, t = queries[s:s + chunk], targets[s:s + chunk]
        sims = e[q] @ ep.T  # [q, P]
        is_self = pool[None, :] == q[:, None]
        is_target = pool[None, :] == t[:, None]
        pos = sims[np.arange(len(q)), np.searchsorted(pool, t)]  # the same numbers the others are compared with
        neg = np.where(is_self | is_target, np.nan, sims)
        ranks[s:s + chunk] = positive_ranks(pos, neg)
        cands[s:s + chunk] = len(pool) - is_self.sum(axis=1)
    return ranks, cands


def evaluate_retrieval(emb: np.ndarray, queries, targets, pool=None) -> dict:
    """MRR, HR@10, HR@100 and MPR of retrieving each target among the pool."""
    ranks, cands = retrieval_ranks(emb, queries, targets, pool)
    m = ranking_metrics(ranks, cands, ks=(10, 100), hits_name="hr")
    m["pool"] = int(len(emb) if pool is None else len(np.unique(pool)))
    return m


def heldout_pairs(users: np.ndarray, tweets: np.ndarray, *, min_common: int = 2, max_user_engagements: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Co-engaged tweet pairs: (a, b, common users) with at least ``min_common`` common users.

    ``users``/``tweets`` are engagement rows (any integer ids). Users with more than
    ``max_user_engagements`` distinct tweets are ignored. For each tweet ``a`` the partner with
    the most common users is kept (ties: the smaller id), so each tweet is a query at most once.
    """
    users = np.asarray(users, dtype=np.int64)
    tweets = np.asarray(tweets, dtype=np.int64)
    ut = np.unique(np.stack([users, tweets], axis=1), axis=0) if len(users) else np.zeros((0, 2), np.int64)
    if len(ut) == 0:
        return (np.zeros(0, np.int64),) * 3
    u, t = ut[:, 0], ut[:, 1]
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
    ends = np.r_[starts[1:], len(u)]
    a_list, b_list = [], []
    for s, e in zip(starts, ends):
        k = e - s
        if k < 2 or k > max_user_engagements:
            continue
        ts = t[s:e]
        i, j = np.triu_indices(k, 1)
        a_list.append(np.r_[ts[i], ts[j]])
        b_list.append(np.r_[ts[j], ts[i]])
    if not a_list:
        return (np.zeros(0, np.int64),) * 3
    a = np.concatenate(a_list)
    b = np.concatenate(b_list)
    pairs, counts = np.unique(np.stack([a, b], axis=1), axis=0, return_counts=True)
    keep = counts >= min_common
    pairs, counts = pairs[keep], counts[keep]
    if len(pairs) == 0:
        return (np.zeros(0, np.int64),) * 3
    # best partner per a: sort by (a, -count, b) and take the first of each a
    order = np.lexsort((pairs[:, 1], -counts, pairs[:, 0]))
    pairs, counts = pairs[order], counts[order]
    first = np.r_[True, pairs[1:, 0] != pairs[:-1, 0]]
    return pairs[first, 0], pairs[first, 1], counts[first]
