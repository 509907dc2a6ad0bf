"""Fixtures for graph build tests: small engagement logs written in every supported format."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest


def write_frame(df: pd.DataFrame, path: Path) -> Path:
    """Write ``df`` as CSV/TSV/Parquet/JSONL according to ``path``'s name (``.gz`` compresses)."""
    path = Path(path)
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    if name.endswith(".parquet"):
        df.to_parquet(path, index=False)
        return path
    if name.endswith(".csv") or name.endswith(".tsv"):
        text = df.to_csv(index=False, sep="," if name.endswith(".csv") else "\t")
    elif name.endswith(".jsonl"):
        text = "".join(json.dumps({k: (None if pd.isna(v) else v) for k, v in rec.items()}) + "\n"
                       for rec in df.to_dict(orient="records"))
    else:
        raise ValueError(path)
    data = text.encode("utf-8")
    if path.name.endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


@pytest.fixture
def small_log() -> pd.DataFrame:
    """A hand-made log with duplicates, several types and a user who engages many tweets."""
    rows = [
        ("alice", "t1", "fav", 100),
        ("alice", "t1", "fav", 150),  # duplicate: latest time 150, count 2
        ("alice", "t2", "retweet", 120),
        ("bob", "t1", "fav", 90),
        ("bob", "t1", "reply", 95),  # same pair, other type: a separate edge
        ("carol", "t3", "fav", 300),
        ("alice", "t3", "reply", 310),
        ("bob", "t2", "fav", 130),
        ("dave", "t4", "retweet", 400),
        ("alice", "t1", "fav", 140),  # third duplicate, not the latest
    ]
    return pd.DataFrame(rows, columns=["user_id", "tweet_id", "engagement", "timestamp"])


@pytest.fixture
def small_texts() -> pd.DataFrame:
    return pd.DataFrame({
        "tweet_id": ["t1", "t2", "t3", "t4", "t9"],
        "title": ["Title one", "Title two", "Title three", "Title four", "not in graph"],
        "text": ["body one", "", "body three", "body four", "x"],
        "topic": ["a", "b", "a", "c", "z"],
    })


def reference_edges(df: pd.DataFrame, user="user_id", item="tweet_id", etype="engagement", time="timestamp") -> pd.DataFrame:
    """Independent reconstruction: one row per (user, tweet, type) with latest time and row count."""
    g = df.groupby([user, item, etype], sort=False).agg(time=(time, "max"), count=(time, "size")).reset_index()
    return g.rename(columns={user: "user", item: "tweet", etype: "type"})


def artifact_edges(graph, direction: str = "user_tweet") -> pd.DataFrame:
    """The artifact's CSR mapped back to original string ids."""
    import numpy as np

    csr = graph.csr(direction)
    rows = np.repeat(np.arange(csr.n_rows), np.diff(csr.indptr))
    rel = np.asarray(graph.relations, dtype=object)
    if direction == "user_tweet":
        users, tweets = graph.user_ids[rows], graph.tweet_ids[np.asarray(csr.indices)]
    else:
        tweets, users = graph.tweet_ids[rows], graph.user_ids[np.asarray(csr.indices)]
    return pd.DataFrame({"user": users, "tweet": tweets, "type": rel[np.asarray(csr.etype)],
                         "time": np.asarray(csr.time), "count": np.asarray(csr.count)})
