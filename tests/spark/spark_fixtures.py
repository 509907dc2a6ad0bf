"""A small hand-made engagement log with the features the parity tests need.

Timestamps spread over a few hours (so a time window matters), duplicate rows of the same
(user, tweet, type) with different times, several engagement types, one hyperactive user far
above the degree cap, a few tweets without text, near-duplicate texts, and (in the dirty
variant) rows each cleaning rule drops.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TYPES = ("fav", "retweet", "reply")


def make_log(seed: int = 0, users: int = 70, tweets: int = 140, rows: int = 2200, dirty: bool = False):
    """(log DataFrame user_id, tweet_id, engagement, timestamp; texts DataFrame tweet_id, text, topic)."""
    rng = np.random.default_rng(seed)
    topics = rng.integers(0, 4, size=tweets)
    user_topic = rng.integers(0, 4, size=users)
    u = rng.integers(0, users, size=rows)
    # users engage mostly within their topic, so tweets share engagers
    same = rng.random(rows) < 0.8
    t = np.where(same, 0, rng.integers(0, tweets, size=rows))
    for i in np.flatnonzero(same):
        pool = np.flatnonzero(topics == user_topic[u[i]])
        t[i] = pool[rng.integers(0, len(pool))]
    etype = rng.choice(TYPES, size=rows, p=[0.6, 0.25, 0.15])
    ts = 1_700_000_000 + rng.integers(0, 6 * 3600, size=rows)
    frame = pd.DataFrame({"user_id": [f"u{x:03d}" for x in u], "tweet_id": [f"t{x:04d}" for x in t],
                          "engagement": etype, "timestamp": ts.astype(np.int64)})
    # duplicates: the same (user, tweet, type) again at another time
    dup = frame.sample(n=rows // 10, random_state=seed).copy()
    dup["timestamp"] = dup["timestamp"] + rng.integers(-3000, 3000, size=len(dup))
    # a hyperactive user (a bot) far above any cap used in the tests
    bot = pd.DataFrame({"user_id": "bot", "tweet_id": [f"t{x:04d}" for x in rng.permutation(tweets)[:120]],
                        "engagement": "fav", "timestamp": 1_700_000_000 + np.arange(120) * 60})
    frame = pd.concat([frame, dup, bot], ignore_index=True)
    frame = frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
    if dirty:
        bad = pd.DataFrame({
            "user_id": ["", None, "u001", "u002", "u003", "  "],
            "tweet_id": ["t0001", "t0002", "", "t0003", "t0004", "t0005"],
            "engagement": ["fav", "fav", "fav", "", "fav", "fav"],
            "timestamp": ["1700000000", "1700000000", "1700000000", "1700000000", "not-a-time", "1700000000"],
        })
        frame = frame.astype({"timestamp": str})
        frame = pd.concat([frame.iloc[:50], bad, frame.iloc[50:]], ignore_index=True)
    words = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "iota", "kappa", "lam", "mu"]
    texts = []
    for i in range(tweets):
        if i % 23 == 5:
            continue  # no text
        w = rng.choice(words, size=6)
        texts.append((f"t{i:04d}", " ".join(w) + f" topic{topics[i]} n{i}", int(topics[i])))
    texts = pd.DataFrame(texts, columns=["tweet_id", "text", "topic"])
    # near-duplicates: a few tweets copy another's text (an RT)
    for src, dst in ((0, 1), (10, 12), (20, 21)):
        if f"t{dst:04d}" in set(texts["tweet_id"]) and f"t{src:04d}" in set(texts["tweet_id"]):
            texts.loc[texts["tweet_id"] == f"t{dst:04d}", "text"] = "RT " + texts.loc[texts["tweet_id"] == f"t{src:04d}", "text"].iloc[0]
    return frame, texts
