"""Ranking and classification metrics, as plain numpy functions.

Ranks count ties half: a positive whose score equals ``k`` candidates' scores sits in the middle
of them (rank = 1 + #greater + #equal / 2). Optimistic tie-breaking would give a constant scorer
rank 1 everywhere; this way a constant or random scorer gets the chance figures it deserves.
"""

from __future__ import annotations

import numpy as np


def positive_ranks(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Rank of each query's positive among itself and its negatives (1 = best).

    ``pos``: [Q] score of the positive; ``neg``: [Q, N] scores of the negatives (NaN = padding,
    ignored). Returns float64 [Q] ranks in [1, N + 1].
    """
    pos = np.asarray(pos, dtype=np.float64)[:, None]
    neg = np.asarray(neg, dtype=np.float64)
    if neg.ndim != 2 or neg.shape[0] != pos.shape[0]:
        raise ValueError(f"neg must be [Q, N] with Q = {pos.shape[0]}, got {neg.shape}")
    greater = (neg > pos).sum(axis=1)
    equal = (neg == pos).sum(axis=1)
    return 1.0 + greater + 0.5 * equal


def ranking_metrics(ranks: np.ndarray, num_candidates=None, ks=(10,), hits_name: str = "hits") -> dict:
    """MRR, ``{hits_name}@k`` for each k, and (given the candidate counts) mean percentile rank.

    ``num_candidates``: int or [Q] array, candidates per query *including* the positive.
    Percentile rank of a query = (rank - 1) / (num_candidates - 1): 0 best, 1 worst, 0.5 chance.
    """
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.size == 0:
        out = {"mrr": float("nan"), **{f"{hits_name}@{k}": float("nan") for k in ks}, "num_queries": 0}
        if num_candidates is not None:
            out["mpr"] = float("nan")
        return out
    out = {"mrr": float(np.mean(1.0 / ranks))}
    for k in ks:
        out[f"{hits_name}@{k}"] = float(np.mean(ranks <= k))
    if num_candidates is not None:
        n = np.broadcast_to(np.asarray(num_candidates, dtype=np.float64), ranks.shape)
        out["mpr"] = float(np.mean((ranks - 1.0) / np.maximum(n - 1.0, 1.0)))
    out["num_queries"] = int(ranks.size)
    return out


def macro_f1(y_true, y_pred, labels=None) -> float:
    """Unweighted mean over labels of F1 = 2·TP / (2·TP + FP + FN).

    ``labels`` defaults to every label seen in ``y_true`` or ``y_pred`` (scikit-learn's
    convention); a label with no true and no predicted example is left out, one with either
    but no true positive scores 0.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
    if labels is None:
        labels = np.union1d(y_true, y_pred)
    scores = []
    for label in labels:
        t = y_true == label
        p = y_pred == label
        tp = np.sum(t & p)
        denom = 2 * tp + np.sum(~t & p) + np.sum(t & ~p)
        scores.append(0.0 if denom == 0 else 2.0 * tp / denom)
    return float(np.mean(scores)) if scores else float("nan")


def median_summary(values) -> dict:
    """Median, min, max and the values themselves (for per-seed figures)."""
    v = np.asarray(values, dtype=np.float64)
    return {"median": float(np.median(v)), "min": float(v.min()), "max": float(v.max()), "values": [float(x) for x in v]}
