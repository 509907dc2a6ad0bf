"""lm.eval metrics and retrieval: hand-made rankings, scikit-learn's macro-F1, a naive loop."""

from __future__ import annotations

import numpy as np
import pytest

from lm.eval.metrics import macro_f1, median_summary, positive_ranks, ranking_metrics
from lm.eval.retrieval import evaluate_retrieval, heldout_pairs, retrieval_ranks


def test_ranks_on_a_hand_made_ranking():
    pos = np.array([0.9, 0.5, 0.1, 0.5])
    neg = np.array([
        [0.1, 0.2, 0.3],  # nothing above: rank 1
        [0.6, 0.7, 0.1],  # two above: rank 3
        [0.2, 0.3, 0.4],  # all above: rank 4
        [0.5, 0.5, 0.9],  # one above, two tied: 1 + 1 + 2/2 = 3
    ])
    ranks = positive_ranks(pos, neg)
    assert ranks.tolist() == [1.0, 3.0, 4.0, 3.0]
    m = ranking_metrics(ranks, num_candidates=4, ks=(1, 3))
    assert m["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 4 + 1 / 3) / 4)
    assert m["hits@1"] == 0.25 and m["hits@3"] == 0.75
    assert m["mpr"] == pytest.approx(np.mean([0, 2 / 3, 1, 2 / 3]))


def test_padding_is_ignored_and_constant_scores_get_the_middle_rank():
    neg = np.array([[0.3, np.nan, np.nan], [0.0, 0.0, 0.0]])
    ranks = positive_ranks(np.array([0.2, 0.0]), neg)
    assert ranks.tolist() == [2.0, 2.5]  # padding never outranks; 3 ties -> middle of 4


def test_macro_f1_matches_scikit_learn():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    for trial in range(5):
        y = rng.choice(list("abcde"), 300)
        p = np.where(rng.random(300) < 0.5, y, rng.choice(list("abcdf"), 300))  # 'f' only predicted, 'e' only true sometimes
        assert macro_f1(y, p) == pytest.approx(f1_score(y, p, average="macro"), abs=1e-12)
    assert macro_f1(["a", "b"], ["a", "b"]) == 1.0


def test_median_summary():
    s = median_summary([0.1, 0.4, 0.2, 0.3, 0.5, 0.6])
    assert s["median"] == pytest.approx(0.35) and s["min"] == 0.1 and s["max"] == 0.6 and len(s["values"]) == 6


def _naive_retrieval(emb, queries, targets):
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    ranks = []
    for q, t in zip(queries, targets):
        target = float(e[q] @ e[t])
        greater = ties = 0
        for j in range(len(e)):
            if j in (q, t):
                continue
            s = float(e[q] @ e[j])
            if s > target + 1e-6:
                greater += 1
            elif abs(s - target) <= 1e-6:
                ties += 1
        ranks.append(1 + greater + ties / 2)
    return np.asarray(ranks)


def test_retrieval_matches_a_naive_loop():
    rng = np.random.default_rng(1)
    emb = rng.standard_normal((150, 12)).astype(np.float32)
    emb[7] = emb[3]  # a duplicate: ties are handled the same way
    queries = rng.integers(0, 150, 60)
    targets = (queries + rng.integers(1, 149, 60)) % 150
    queries[0], targets[0] = 3, 7
    ranks, cands = retrieval_ranks(emb, queries, targets, chunk=16)
    assert np.allclose(ranks, _naive_retrieval(emb.astype(np.float64), queries, targets))
    assert (cands == 149).all()
    m = evaluate_retrieval(emb, queries, targets)
    assert m["mrr"] == pytest.approx(np.mean(1 / ranks))
    assert m["hr@10"] == pytest.approx(np.mean(ranks <= 10)) and m["hr@100"] == pytest.approx(np.mean(ranks <= 100))
    assert m["mpr"] == pytest.approx(np.mean((ranks - 1) / 148))


def test_retrieval_of_planted_neighbours_beats_random():
    rng = np.random.default_rng(2)
    base = rng.standard_normal((100, 16))
    emb = np.concatenate([base, base + 0.1 * rng.standard_normal((100, 16))]).astype(np.float32)
    good = evaluate_retrieval(emb, np.arange(100), np.arange(100, 200))
    assert good["hr@10"] > 0.95 and good["mpr"] < 0.01
    rand = evaluate_retrieval(rng.standard_normal((200, 16)).astype(np.float32), np.arange(100), np.arange(100, 200))
    assert 0.3 < rand["mpr"] < 0.7


def test_heldout_pairs_match_a_naive_count():
    rng = np.random.default_rng(3)
    users = rng.integers(0, 30, 400)
    tweets = rng.integers(0, 40, 400)
    users[:20] = 99  # a heavy user (up to 20 tweets), dropped below
    a, b, c = heldout_pairs(users, tweets, min_common=2, max_user_engagements=15)
    sets = {}
    for u, t in zip(users, tweets):
        sets.setdefault(u, set()).add(t)
    counts = {}
    for u, ts in sets.items():
        if len(ts) > 15:
            continue
        for x in ts:
            for y in ts:
                if x != y:
                    counts[(x, y)] = counts.get((x, y), 0) + 1
    best = {}
    for (x, y), n in counts.items():
        if n >= 2 and (x not in best or (n, -y) > (best[x][1], -best[x][0])):
            best[x] = (y, n)
    assert sorted(zip(a.tolist(), b.tolist(), c.tolist())) == sorted((x, y, n) for x, (y, n) in best.items())
