"""Tiny synthetic corpora for lm tests and the lm benchmark (no dgl, no mining/ code).

Tweets belong to topics; each topic has its own words, so a pair of tweets from the same topic
is "socially similar" and both the social and the MLM loss have something to learn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TOPIC_WORDS = [
    "cat kitten purr whisker meow paw fur litter nap tuna".split(),
    "goal striker keeper match league score penalty pitch coach derby".split(),
    "bake flour oven dough yeast crust butter sugar loaf knead".split(),
    "rocket orbit launch booster payload nasa mars lunar thrust crew".split(),
    "guitar chord riff amp drummer bass stage tour album encore".split(),
    "rain storm cloud thunder forecast humid breeze snow frost sunny".split(),
]
COMMON = "the a is and of to in my so very really today just what this".split()
EXTRAS = ["日本", "über", "café", "🎉", "naïve", "привет"]


def make_texts(n_tweets: int = 120, seed: int = 0, min_words: int = 3, max_words: int = 30):
    """``(tweet_ids, texts, topics)``: tweet ids are strings like ``t00007``."""
    rng = np.random.default_rng(seed)
    ids, texts, topics = [], [], []
    for i in range(n_tweets):
        topic = i % len(TOPIC_WORDS)
        n = int(rng.integers(min_words, max_words + 1))
        words = []
        for _ in range(n):
            r = rng.random()
            if r < 0.6:
                words.append(TOPIC_WORDS[topic][rng.integers(len(TOPIC_WORDS[topic]))])
            elif r < 0.97:
                words.append(COMMON[rng.integers(len(COMMON))])
            else:
                words.append(EXTRAS[rng.integers(len(EXTRAS))])
        ids.append(f"t{i:05d}")
        texts.append(" ".join(words))
        topics.append(topic)
    return ids, texts, np.asarray(topics)


def make_pairs(tweet_ids, topics, n_pairs: int = 400, seed: int = 0):
    """A pairs DataFrame (tweet_a, tweet_b, score, method) of distinct same-topic tweets."""
    import pandas as pd

    rng = np.random.default_rng(seed + 1)
    by_topic = {t: np.flatnonzero(topics == t) for t in np.unique(topics)}
    rows = []
    while len(rows) < n_pairs:
        t = int(rng.integers(len(by_topic)))
        a, b = rng.choice(by_topic[t], 2, replace=False)
        rows.append((tweet_ids[a], tweet_ids[b], float(rng.random()), "walk"))
    return pd.DataFrame(rows, columns=["tweet_a", "tweet_b", "score", "method"])


def write_graph_dir(out: str | Path, tweet_ids, texts, topics, seed: int = 0):
    """A GRAPH_DIR whose users engage with tweets of one topic (written without the DGL binary)."""
    import pandas as pd

    from graph.writer import write_graph

    rng = np.random.default_rng(seed + 2)
    n_users = 30
    users, tweets = [], []
    for u in range(n_users):
        topic = u % len(TOPIC_WORDS)
        cand = np.flatnonzero(np.asarray(topics) == topic)
        for t in rng.choice(cand, min(8, len(cand)), replace=False):
            users.append(u)
            tweets.append(int(t))
    frame = pd.DataFrame({"tweet_id": list(tweet_ids), "text": list(texts), "topic": [int(t) for t in topics]})
    return write_graph(out, user_ids=[f"u{u}" for u in range(n_users)], tweet_ids=list(tweet_ids),
                       users=users, tweets=tweets, etypes=np.zeros(len(users), np.int64),
                       times=np.arange(len(users)), relations=["fav"], texts=frame, write_dgl_binary=False)


def write_dataset(directory: str | Path, n_tweets: int = 120, n_pairs: int = 400, seed: int = 0):
    """``(pairs_path, graph_dir)`` under ``directory``."""
    directory = Path(directory)
    ids, texts, topics = make_texts(n_tweets, seed)
    graph_dir = directory / "graph"
    write_graph_dir(graph_dir, ids, texts, topics, seed)
    pairs = make_pairs(ids, topics, n_pairs, seed)
    pairs_path = directory / "pairs.parquet"
    pairs.to_parquet(pairs_path, index=False)
    return pairs_path, graph_dir
