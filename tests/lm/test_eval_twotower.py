"""The engagement task on planted embeddings: topic-carrying features rank far above chance."""

from __future__ import annotations

import numpy as np
import pytest

from lm.eval.twotower import make_ranking_task, negative_distribution, evaluate_engagement, score_task


def _world(n_topics=20, n_users=300, n_tweets=3000, dim_u=16, dim_t=24, seed=0, informative=True):
    """Users with one interest topic, tweets with one topic; users engage only their topic's tweets.

    Tweet rows [0, 2400) are train, [2400, 2700) dev, [2700, 3000) test. The user features carry
    the interest and the tweet features the topic (in different random bases) when informative.
    """
    rng = np.random.default_rng(seed)
    u_topic = np.arange(n_users) % n_topics
    t_topic = rng.integers(0, n_topics, n_tweets)
    cu = rng.standard_normal((n_topics, dim_u))
    ct = rng.standard_normal((n_topics, dim_t))
    ux = (cu[u_topic] + 0.3 * rng.standard_normal((n_users, dim_u))).astype(np.float32)
    tx = (ct[t_topic] + 0.3 * rng.standard_normal((n_tweets, dim_t))).astype(np.float32)
    if not informative:
        tx = rng.standard_normal((n_tweets, dim_t)).astype(np.float32)
    splits = {"train": np.arange(0, 2400), "dev": np.arange(2400, 2700), "test": np.arange(2700, 3000)}
    out = {}
    for name, rows in splits.items():
        us, ts = [], []
        for u in range(n_users):
            mine = rows[t_topic[rows] == u_topic[u]]
            k = {"train": 20, "dev": 2, "test": 2}[name]
            for t in rng.choice(mine, min(k, len(mine)), replace=False):
                us.append(u)
                ts.append(t)
        out[name] = (np.asarray(us), np.asarray(ts), rows)
    return ux, tx, out


def test_ranking_task_draws_unengaged_candidates_from_the_pool():
    rng = np.random.default_rng(0)
    users = np.array([0, 0, 1, 2, 2, 2])
    tweets = np.array([10, 11, 12, 13, 14, 10])
    pool = np.arange(10, 60)
    task = make_ranking_task(users, tweets, pool, candidates=20, rng=rng)
    assert task.users.tolist() == [0, 1, 2]
    engaged = {0: {10, 11}, 1: {12}, 2: {10, 13, 14}}
    for u, p, negs in zip(task.users, task.positives, task.negatives):
        assert p in engaged[u]
        assert len(negs) == 19 and len(set(negs)) == 19  # without replacement
        assert not set(negs) & engaged[u] and set(negs) <= set(pool)
    assert (task.num_candidates == 20).all()
    small = make_ranking_task(users, tweets, np.arange(10, 16), candidates=20, rng=rng)
    assert small.num_candidates.tolist() == [5, 6, 4]  # pool of 6 minus the user's engaged tweets, plus the positive


def test_score_task_ranks_by_dot_product():
    uv = np.array([[1.0, 0.0]])
    tv = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.0], [2.0, 0.0]])
    from lm.eval.twotower import RankingTask

    task = RankingTask(np.array([0]), np.array([1]), np.array([[0, 2, 3, -1]]))
    assert score_task(uv, tv, task).tolist() == [2.0]  # only tweet 3 (score 2) beats the positive (score 1)


def test_negative_distribution_follows_frequency_to_the_075():
    p = negative_distribution(np.array([0, 0, 0, 0, 1, 3]), 5, 0.75)
    assert p[2] == 0 and p[4] == 0
    assert p[0] / p[1] == pytest.approx(4 ** 0.75)
    assert p.sum() == pytest.approx(1.0)


KW = dict(candidates=200, max_steps=150, eval_every=50, patience=2, batch_size=128, negatives=128, hidden=32, dim=16)


def test_planted_topics_rank_far_above_chance():
    ux, tx, d = _world()
    m = evaluate_engagement(ux, tx, d["train"][:2], d["dev"], d["test"], seeds=[0, 1], **KW)
    # ~15 of the 200 candidates share the user's topic, so a model that learned the topic
    # gets HITS@10 around 0.5; chance is 10/200 = 0.05
    assert m["hits@10"] > 0.3, m
    assert m["mrr"] > 0.15
    assert len(m["per_seed"]) == 2 and m["test_users"] == 300
    assert all(p["best_step"] % 50 == 0 for p in m["per_seed"])


def test_random_tweet_features_give_chance_level():
    ux, tx, d = _world(informative=False)
    m = evaluate_engagement(ux, tx, d["train"][:2], d["dev"], d["test"], seeds=[0, 1, 2], **dict(KW, max_steps=50))
    # chance HITS@10 = 10/200 = 0.05; 300 users per seed, median of 3: sd ~ 0.013
    assert abs(m["hits@10"] - 0.05) < 0.04, m
    assert m["random_hits@10"] == pytest.approx(0.05)


def test_same_seed_same_result():
    ux, tx, d = _world(n_users=100)
    kw = dict(KW, max_steps=40, eval_every=20)
    a = evaluate_engagement(ux, tx, d["train"][:2], d["dev"], d["test"], seeds=[5], **kw)
    b = evaluate_engagement(ux, tx, d["train"][:2], d["dev"], d["test"], seeds=[5], **kw)
    assert a["per_seed"] == b["per_seed"]


def test_chance_level_reports_the_candidates_each_query_really_had():
    """Asking for more candidates than the split holds: the report says what was ranked."""
    ux, tx, d = _world(n_users=100)
    m = evaluate_engagement(ux, tx, d["train"][:2], d["dev"], d["test"], seeds=[0],
                            **dict(KW, candidates=100_000, max_steps=20, eval_every=10))
    pool = len(d["test"][2])
    assert m["candidates"] == 100_000
    assert 1 < m["mean_candidates"] <= pool
    assert m["random_hits@10"] == pytest.approx(min(1.0, 10 / m["mean_candidates"]), rel=0.2)
    assert m["random_hits@10"] > 10 / 100_000
