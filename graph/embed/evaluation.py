"""Evaluation of embeddings: link-prediction ranking of held-out edges, and nearest-neighbour
label agreement. numpy only, so a baseline (the benchmark's PyG TransE) is scored the same way.

Link prediction: each held-out edge (u, r, t) is ranked against ``num_candidates`` tweets drawn
uniformly (shared by a block of edges, seeded); rank = 1 + #candidates scoring higher + half the
ties, candidates equal to t itself excluded ("raw" setting: other true tweets of u are not filtered).
MRR = mean 1/rank; HITS@k = share of edges with rank <= k.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

HITS_AT = (1, 10, 50)


class Scorer(Protocol):
    def pos(self, users: np.ndarray, rels: np.ndarray, tweets: np.ndarray) -> np.ndarray:
        """Scores of edges: [b] x3 -> [b]."""

    def matrix(self, users: np.ndarray, rels: np.ndarray, tweets: np.ndarray) -> np.ndarray:
        """Scores of every (user_i, rel_i) with every tweet_j: [b], [b], [c] -> [b, c]."""


class TranslationScorer:
    """f(u, t, r) = (u + r)^T t over embedding tables."""

    def __init__(self, user: np.ndarray, tweet: np.ndarray, relation: np.ndarray):
        self.user, self.tweet, self.relation = user, tweet, relation

    def pos(self, users, rels, tweets):
        return np.einsum("bd,bd->b", self.user[users] + self.relation[rels], self.tweet[tweets])

    def matrix(self, users, rels, tweets):
        return (self.user[users] + self.relation[rels]) @ self.tweet[tweets].T


def rank_against_candidates(pos: np.ndarray, cand: np.ndarray, is_true: np.ndarray | None = None) -> np.ndarray:
    """1-based rank of each pos[i] among cand[i, :]: 1 + #higher + #ties / 2; is_true[i, j] excludes cand j."""
    higher = cand > pos[:, None]
    ties = cand == pos[:, None]
    if is_true is not None:
        higher &= ~is_true
        ties &= ~is_true
    return 1.0 + higher.sum(1) + 0.5 * ties.sum(1)


def link_prediction_ranks(scorer: Scorer, users: np.ndarray, rels: np.ndarray, tweets: np.ndarray, num_tweets: int,
                          num_candidates: int = 1000, seed: int = 0, block: int = 1024) -> np.ndarray:
    """Rank of every held-out edge against uniformly drawn candidate tweets (float64 [n])."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xE7A1]))
    n = len(users)
    ranks = np.empty(n, dtype=np.float64)
    for s in range(0, n, block):
        e = min(n, s + block)
        cand = rng.integers(0, num_tweets, size=num_candidates)
        pos = np.asarray(scorer.pos(users[s:e], rels[s:e], tweets[s:e]), dtype=np.float64)
        sc = np.asarray(scorer.matrix(users[s:e], rels[s:e], cand), dtype=np.float64)
        ranks[s:e] = rank_against_candidates(pos, sc, cand[None, :] == tweets[s:e, None])
    return ranks


def summarize_ranks(ranks: np.ndarray, hits_at: Sequence[int] = HITS_AT) -> dict:
    if len(ranks) == 0:  # nothing held out (of this relation): null in JSON, not NaN (which strict parsers refuse)
        return {"mrr": None, **{f"hits@{k}": None for k in hits_at}, "count": 0}
    out = {"mrr": float(np.mean(1.0 / ranks))}
    for k in hits_at:
        out[f"hits@{k}"] = float(np.mean(ranks <= k))
    out["count"] = int(len(ranks))
    return out


def link_prediction_metrics(ranks: np.ndarray, rels: np.ndarray, relation_names: Sequence[str]) -> dict:
    """Overall MRR and HITS@k, plus the same per relation (by name)."""
    metrics = summarize_ranks(ranks)
    metrics["per_relation"] = {name: summarize_ranks(ranks[rels == r]) for r, name in enumerate(relation_names)}
    return metrics


def knn_label_agreement(x: np.ndarray, labels: np.ndarray, k: int = 10, block: int = 2048) -> float:
    """Share of each row's k nearest rows (cosine, itself excluded) that carry the row's label.

    x: [n, d]; labels: [n] (any comparable values). Exact search in blocks of ``block`` queries.
    """
    x = np.asarray(x, dtype=np.float32)
    labels = np.asarray(labels)
    n = len(x)
    if n <= k:
        raise ValueError(f"need more than k={k} rows, got {n}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    xn = x / np.maximum(norms, 1e-12)
    same = 0
    for s in range(0, n, block):
        e = min(n, s + block)
        sim = xn[s:e] @ xn.T  # [b, n]
        sim[np.arange(e - s), np.arange(s, e)] = -np.inf
        nn = np.argpartition(-sim, k, axis=1)[:, :k]
        same += int((labels[nn] == labels[s:e, None]).sum())
    return same / (n * k)


def random_label_agreement(labels: np.ndarray) -> float:
    """Probability that a random other row shares a row's label: sum_c n_c (n_c - 1) / (n (n - 1))."""
    _, counts = np.unique(np.asarray(labels), return_counts=True)
    n = counts.sum()
    return float((counts * (counts - 1)).sum() / (n * (n - 1)))
