"""The engagement task (TwHIN-BERT §3.2): a two-tower model on frozen embeddings, ranked 1 in 1,000.

Given user features ``U`` [n_users, du] (TwHIN user embeddings) and tweet features ``X``
[n_tweets, dt] (frozen LM embeddings), each tower is a small MLP projecting to ``dim`` (128);
the score of (user, tweet) is the dot product of the projections.

Training: (user, train tweet) engagements, batches of 512 positives; each step draws
``negatives`` tweets shared by the batch with probability ∝ (train engagements of the tweet)^0.75
and minimises the sampled softmax cross-entropy of the positive against them (a negative that
is the row's own positive is masked). Adam, lr 1e-3.

Model selection: every ``eval_every`` steps the dev task's HITS@10 is measured and the best
weights are kept (early stopping after ``patience`` evaluations without improvement).

Ranking protocol (:func:`make_ranking_task`): each user with an engagement in the split ranks
one engaged tweet of the split (drawn at random) among ``candidates - 1`` tweets drawn uniformly
without replacement from the same split's tweets that the user did not engage with.

Everything here is a function of arrays; no artifact or language model is needed.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import numpy as np

from lm.eval.metrics import median_summary, positive_ranks, ranking_metrics

log = logging.getLogger(__name__)


@dataclass
class RankingTask:
    """Queries of the 1-in-N protocol; rows index the user and tweet feature matrices."""

    users: np.ndarray  # int64 [Q]
    positives: np.ndarray  # int64 [Q]
    negatives: np.ndarray  # int64 [Q, N-1], -1 = padding (fewer candidates available)

    def __len__(self) -> int:
        return len(self.users)

    @property
    def num_candidates(self) -> np.ndarray:
        return 1 + (self.negatives >= 0).sum(axis=1)


def make_ranking_task(users: np.ndarray, tweets: np.ndarray, pool: np.ndarray, candidates: int, rng: np.random.Generator) -> RankingTask:
    """One query per user of the (user, tweet) engagements ``users``/``tweets``.

    The positive is one of the user's engaged tweets drawn uniformly; the ``candidates - 1``
    negatives are drawn uniformly without replacement from ``pool`` (tweet rows) minus the
    user's engaged tweets. When the pool is too small, the query has fewer candidates (padded
    with -1) and a warning says so.
    """
    users = np.asarray(users, dtype=np.int64)
    tweets = np.asarray(tweets, dtype=np.int64)
    pool = np.unique(np.asarray(pool, dtype=np.int64))
    if len(users) == 0:
        return RankingTask(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, candidates - 1), np.int64))
    order = np.lexsort((tweets, users))
    users, tweets = users[order], tweets[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)]
    q = len(starts)
    negatives = np.full((q, candidates - 1), -1, dtype=np.int64)
    positives = np.empty(q, dtype=np.int64)
    short = 0
    for i, (s, e) in enumerate(zip(starts, ends)):
        engaged = np.unique(tweets[s:e])
        positives[i] = engaged[rng.integers(len(engaged))]
        want = candidates - 1
        take = min(len(pool), want + len(engaged))
        drawn = pool[rng.choice(len(pool), size=take, replace=False)]
        drawn = drawn[~np.isin(drawn, engaged)][:want]
        if len(drawn) < want:
            short += 1
        negatives[i, : len(drawn)] = drawn
    if short:
        log.warning("%d of %d queries have fewer than %d candidates (the split has only %d tweets)", short, q, candidates, len(pool))
    return RankingTask(users[starts], positives, negatives)


def score_task(user_vecs: np.ndarray, tweet_vecs: np.ndarray, task: RankingTask, chunk: int = 256) -> np.ndarray:
    """Ranks (1 = best) of each query's positive by dot-product score; padding never outranks."""
    ranks = np.empty(len(task), dtype=np.float64)
    for s in range(0, len(task), chunk):
        u = user_vecs[task.users[s:s + chunk]]  # [q, D]
        pos = np.einsum("qd,qd->q", u, tweet_vecs[task.positives[s:s + chunk]])
        neg_idx = task.negatives[s:s + chunk]
        neg = np.einsum("qd,qnd->qn", u, tweet_vecs[np.maximum(neg_idx, 0)])  # [q, N-1]
        neg = np.where(neg_idx >= 0, neg, -np.inf)
        ranks[s:s + chunk] = positive_ranks(pos, neg)
    return ranks


def standardize(x: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Zero mean, unit variance per column, with statistics from ``rows`` (default: all rows)."""
    x = np.asarray(x, dtype=np.float32)
    ref = x if rows is None else x[rows]
    mu = ref.mean(axis=0, dtype=np.float64)
    sd = ref.std(axis=0, dtype=np.float64)
    sd[sd < 1e-8] = 1.0
    return ((x - mu) / sd).astype(np.float32)


def negative_distribution(tweets: np.ndarray, n_tweets: int, power: float = 0.75) -> np.ndarray:
    """Probability of drawing each tweet row as a negative: ∝ (train engagements)^power."""
    freq = np.bincount(np.asarray(tweets, dtype=np.int64), minlength=n_tweets).astype(np.float64)
    w = np.where(freq > 0, freq ** power, 0.0)
    if w.sum() <= 0:
        raise ValueError("no training engagements to draw negatives from")
    return w / w.sum()


def _tower(d_in: int, hidden: int, dim: int):
    import torch.nn as nn

    if hidden <= 0:
        return nn.Linear(d_in, dim)
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, dim))


class TwoTower:
    """User and tweet towers (torch modules) and numpy-in/numpy-out projection."""

    def __init__(self, d_user: int, d_tweet: int, dim: int = 128, hidden: int = 256):
        import torch.nn as nn

        self.net = nn.ModuleDict({"user": _tower(d_user, hidden, dim), "tweet": _tower(d_tweet, hidden, dim)})

    def project(self, which: str, x: np.ndarray, chunk: int = 8192) -> np.ndarray:
        import torch

        tower = self.net[which]
        tower.eval()
        out = []
        with torch.no_grad():
            for s in range(0, len(x), chunk):
                out.append(tower(torch.from_numpy(np.ascontiguousarray(x[s:s + chunk], dtype=np.float32))).numpy())
        tower.train()
        return np.concatenate(out) if out else np.zeros((0, tower_out_dim(tower)), np.float32)

    def evaluate(self, user_x: np.ndarray, tweet_x: np.ndarray, task: RankingTask, ks=(10,)) -> dict:
        """Rank the task's candidates by the current towers; ranking metrics (mrr, hits@k)."""
        # project only the rows the task uses, then re-index the task into them
        needed_u = np.unique(task.users)
        needed_t = np.unique(np.r_[task.positives, task.negatives[task.negatives >= 0]])
        uv = self.project("user", user_x[needed_u])
        tv = self.project("tweet", tweet_x[needed_t])
        local = RankingTask(np.searchsorted(needed_u, task.users), np.searchsorted(needed_t, task.positives),
                            np.where(task.negatives >= 0, np.searchsorted(needed_t, task.negatives), -1))
        ranks = score_task(uv, tv, local)
        return ranking_metrics(ranks, task.num_candidates, ks=ks)

    @property
    def dim(self) -> int:
        return tower_out_dim(self.net["user"])


def tower_out_dim(tower) -> int:
    last = tower[-1] if hasattr(tower, "__getitem__") else tower
    return int(last.out_features)


def train_two_tower(user_x: np.ndarray, tweet_x: np.ndarray, train_users: np.ndarray, train_tweets: np.ndarray,
                    dev_task: RankingTask | None, *, seed: int, dim: int = 128, hidden: int = 256, batch_size: int = 512,
                    negatives: int = 1024, neg_power: float = 0.75, lr: float = 1e-3, max_steps: int = 3000,
                    eval_every: int = 200, patience: int = 4) -> tuple[TwoTower, dict]:
    """Train the two towers on (user row, tweet row) engagements; keep the best dev HITS@10 weights.

    Returns ``(model, info)``; info has the step of the kept weights, its dev metrics, the
    steps run and the dev history. Without a dev task the last weights are kept.
    """
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 1])
    train_users = np.asarray(train_users, dtype=np.int64)
    train_tweets = np.asarray(train_tweets, dtype=np.int64)
    if len(train_users) == 0:
        raise ValueError("no training engagements for the two-tower model")
    cdf = np.cumsum(negative_distribution(train_tweets, tweet_x.shape[0], neg_power))
    cdf /= cdf[-1]
    model = TwoTower(user_x.shape[1], tweet_x.shape[1], dim, hidden)
    opt = torch.optim.Adam(model.net.parameters(), lr=lr)
    U = torch.from_numpy(np.ascontiguousarray(user_x, dtype=np.float32))
    X = torch.from_numpy(np.ascontiguousarray(tweet_x, dtype=np.float32))
    n = len(train_users)
    order = rng.permutation(n)
    cursor = 0
    best = {"hits@10": -1.0}
    best_state, best_step, bad, history = None, 0, 0, []
    step = 0
    for step in range(1, max_steps + 1):
        if cursor + batch_size > n:
            order, cursor = rng.permutation(n), 0
        idx = order[cursor:cursor + batch_size]
        cursor += batch_size
        neg = np.minimum(np.searchsorted(cdf, rng.random(negatives), side="right"), len(cdf) - 1)
        u = model.net["user"](U[train_users[idx]])  # [B, dim]
        t = model.net["tweet"](X[train_tweets[idx]])  # [B, dim]
        tn = model.net["tweet"](X[neg])  # [N, dim]
        pos = (u * t).sum(-1, keepdim=True)  # [B, 1]
        negs = u @ tn.T  # [B, N]
        hit = torch.from_numpy(train_tweets[idx][:, None] == neg[None, :])
        negs = negs.masked_fill(hit, float("-inf"))
        logits = torch.cat([pos, negs], dim=1)
        loss = F.cross_entropy(logits, torch.zeros(len(idx), dtype=torch.long))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if dev_task is not None and (step % eval_every == 0 or step == max_steps):
            m = model.evaluate(user_x, tweet_x, dev_task)
            history.append({"step": step, "loss": float(loss.item()), "dev_hits@10": m["hits@10"], "dev_mrr": m["mrr"]})
            log.debug("seed %d step %d loss %.4f dev hits@10 %.4f", seed, step, loss.item(), m["hits@10"])
            if m["hits@10"] > best["hits@10"]:
                best, best_step, bad = m, step, 0
                best_state = copy.deepcopy(model.net.state_dict())
            else:
                bad += 1
                if bad >= patience:
                    break
    if best_state is not None:
        model.net.load_state_dict(best_state)
    else:
        best_step = step
    info = {"best_step": int(best_step), "steps": int(step), "dev": best if dev_task is not None else None, "history": history}
    return model, info


def evaluate_engagement(user_x: np.ndarray, tweet_x: np.ndarray, train: tuple, dev: tuple, test: tuple, *,
                        seeds, candidates: int = 1000, **train_kwargs) -> dict:
    """The full engagement protocol, median over ``seeds``.

    ``train`` = (user rows, tweet rows) of train engagements; ``dev``/``test`` =
    (user rows, tweet rows, pool of tweet rows) of the split. Features are standardised with
    statistics of the rows used in training. Each seed draws its own dev/test queries and
    initialises its own towers; the same seed gives the same queries for every model, so models
    are compared on identical test queries.
    """
    train_users, train_tweets = (np.asarray(a, dtype=np.int64) for a in train)
    ux = standardize(user_x, np.unique(train_users))
    tx = standardize(tweet_x, np.unique(train_tweets))
    per_seed = []
    for seed in seeds:
        dev_task = make_ranking_task(dev[0], dev[1], dev[2], candidates, np.random.default_rng([seed, 2]))
        test_task = make_ranking_task(test[0], test[1], test[2], candidates, np.random.default_rng([seed, 3]))
        if len(test_task) == 0:
            raise ValueError("no test user has both a graph embedding and an engaged test tweet with text")
        model, info = train_two_tower(ux, tx, train_users, train_tweets, dev_task if len(dev_task) else None, seed=seed, **train_kwargs)
        m = model.evaluate(ux, tx, test_task)
        n_cand = test_task.num_candidates
        per_seed.append({"seed": int(seed), "hits@10": m["hits@10"], "mrr": m["mrr"], "best_step": info["best_step"],
                         "steps": info["steps"], "dev_hits@10": (info["dev"] or {}).get("hits@10"),
                         "test_queries": m["num_queries"], "dev_queries": len(dev_task),
                         "mean_candidates": float(n_cand.mean()),
                         "random_hits@10": float(np.minimum(1.0, 10.0 / n_cand).mean())})
        log.info("engagement seed %d: test hits@10 %.4f mrr %.4f (dev hits@10 %s at step %d)", seed, m["hits@10"], m["mrr"],
                 per_seed[-1]["dev_hits@10"], info["best_step"])
    hits = median_summary([p["hits@10"] for p in per_seed])
    mrr = median_summary([p["mrr"] for p in per_seed])
    return {"hits@10": hits["median"], "mrr": mrr["median"], "hits@10_summary": hits, "mrr_summary": mrr,
            "per_seed": per_seed, "candidates": int(candidates),
            # what each query really ranked: fewer than `candidates` when the split has fewer tweets
            "mean_candidates": float(np.mean([p["mean_candidates"] for p in per_seed])),
            "random_hits@10": float(np.mean([p["random_hits@10"] for p in per_seed])),
            "test_users": per_seed[0]["test_queries"], "dev_users": per_seed[0]["dev_queries"],
            "train_engagements": int(len(train_users))}
