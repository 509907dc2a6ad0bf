"""Small graphs of known shape for the mining tests (written without dgl)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from graph.writer import write_graph


def planted_graph(out, *, n_topics=4, tweets_per_topic=30, users_per_topic=25, engagements_per_user=8,
                  seed=0, no_text=(), texts_override=None, n_types=2):
    """Users engage only with tweets of their own topic; texts are distinct per tweet.

    Tweet i has topic ``i // tweets_per_topic`` (stored as a ``topic`` column of the texts);
    tweets in ``no_text`` get no text; ``texts_override`` {tweet index: text} replaces texts.
    """
    rng = np.random.default_rng(seed)
    n_tweets = n_topics * tweets_per_topic
    n_users = n_topics * users_per_topic
    users, tweets, etypes, times = [], [], [], []
    for u in range(n_users):
        topic = u // users_per_topic
        picks = rng.choice(tweets_per_topic, engagements_per_user, replace=False) + topic * tweets_per_topic
        for t in picks:
            users.append(u)
            tweets.append(int(t))
            etypes.append(int(rng.integers(n_types)))
            times.append(1_600_000_000 + int(rng.integers(0, 3600)))
    words = [f"w{j}" for j in range(400)]
    texts = []
    for i in range(n_tweets):
        if i in no_text:
            continue
        text = " ".join(rng.choice(words, 8, replace=False)) + f" tweet{i}"
        if texts_override and i in texts_override:
            text = texts_override[i]
        texts.append({"tweet_id": f"t{i:04d}", "text": text, "topic": f"topic{i // tweets_per_topic}"})
    relations = ["fav", "retweet", "reply"][:n_types]
    return write_graph(out, user_ids=[f"u{u}" for u in range(n_users)], tweet_ids=[f"t{i:04d}" for i in range(n_tweets)],
                       users=users, tweets=tweets, etypes=etypes, times=times, relations=relations,
                       type_weights={r: 1.0 for r in relations}, texts=pd.DataFrame(texts), write_dgl_binary=False)


def write_embeddings(emb_dir, graph, vectors, fingerprint=None):
    """An EMB_DIR as `graph embed` writes it (tweet.npy + manifest.json)."""
    from pathlib import Path

    from coengage.artifacts import write_json

    emb_dir = Path(emb_dir)
    emb_dir.mkdir(parents=True, exist_ok=True)
    np.save(emb_dir / "tweet.npy", np.asarray(vectors, dtype=np.float32))
    write_json(emb_dir / "manifest.json", {"kind": "coengage.embeddings", "schema_version": 1,
                                           "graph_fingerprint": fingerprint or graph.fingerprint,
                                           "dim": int(np.asarray(vectors).shape[1]), "fingerprint": "test"})
    return emb_dir


def topic_vectors(graph, n_topics, tweets_per_topic, dim=16, noise=0.3, seed=0):
    """Tweet vectors clustered by planted topic."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_topics, dim))
    topic = np.arange(graph.num_tweets) // tweets_per_topic
    return centers[topic] + noise * rng.normal(size=(graph.num_tweets, dim))
