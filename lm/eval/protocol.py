"""What is evaluated, read from the artifacts: the tweet table, the engagements per split, pairs.

The split comes from the graph build (:mod:`graph.split`): the graph and its ``texts.parquet``
hold train tweets only; ``GRAPH_DIR/heldout/`` holds dev and test tweets, their texts and their
engagements. One :class:`TweetTable` lists every tweet that gets a feature vector: the train
tweets with text (optionally a seeded sample of ``max_train_tweets``) followed by all held-out
tweets with text. All tasks index rows of this table.

* engagement: train = the graph's (user node, train tweet) edges (deduplicated over engagement
  types); dev/test = held-out engagements whose user has a graph node (``user >= 0``); the
  candidate pool of a split = that split's tweets with text.
* classify: logistic regression fit on labelled train tweets, C chosen on labelled dev tweets,
  macro-F1 on labelled test tweets.
* pairs: by default co-engaged *test* tweets (:func:`lm.eval.retrieval.heldout_pairs`), ranked
  among every tweet of the table; or the pairs of a ``--pairs`` file found in the table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from coengage.errors import InputError
from graph.split import DEV, TEST, TRAIN, Heldout

log = logging.getLogger(__name__)


@dataclass
class TweetTable:
    """Every tweet that gets a feature vector; row order is feature-matrix order."""

    tweet_id: np.ndarray  # object [n] (str)
    text: np.ndarray  # object [n] (str)
    split: np.ndarray  # int8 [n]: 0 train, 1 dev, 2 test
    node: np.ndarray  # int64 [n]: graph tweet node of train rows, -1 for held-out rows
    labels: "object"  # pandas DataFrame [n] of the label columns
    counts: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.tweet_id)

    def rows(self, split: int) -> np.ndarray:
        return np.flatnonzero(self.split == split)

    def row_of(self) -> dict:
        return {t: i for i, t in enumerate(self.tweet_id)}


def load_tweet_table(graph, heldout: Heldout, *, max_train_tweets: int = 0, seed: int = 0) -> TweetTable:
    """Train texts of ``graph`` (sampled to ``max_train_tweets`` if > 0) + held-out texts."""
    import pandas as pd

    train = graph.texts()
    total_train = len(train)
    if max_train_tweets and len(train) > max_train_tweets:
        keep = np.sort(np.random.default_rng([seed, 11]).choice(len(train), size=max_train_tweets, replace=False))
        train = train.iloc[keep].reset_index(drop=True)
    held = heldout.texts
    held = held[held["text"].fillna("").astype(str).str.strip() != ""]
    label_cols = [c for c in list(train.columns) + list(held.columns) if c not in ("node", "tweet_id", "text", "split")]
    label_cols = list(dict.fromkeys(label_cols))
    frame = pd.concat([
        train.assign(_split=TRAIN),
        held.assign(node=-1, _split=np.where(held["split"].to_numpy() == "dev", DEV, TEST)),
    ], ignore_index=True)
    table = TweetTable(
        tweet_id=frame["tweet_id"].astype(str).to_numpy(dtype=object),
        text=frame["text"].fillna("").astype(str).to_numpy(dtype=object),
        split=frame["_split"].to_numpy().astype(np.int8),
        node=frame["node"].to_numpy().astype(np.int64),
        labels=frame[label_cols].reset_index(drop=True),
        counts={"train_texts": int(total_train), "train_texts_used": int((frame["_split"] == TRAIN).sum()),
                "dev_texts": int((frame["_split"] == DEV).sum()), "test_texts": int((frame["_split"] == TEST).sum())},
    )
    if len(set(table.tweet_id)) != len(table):
        raise InputError("a tweet id is both in the graph's texts and in heldout/texts.parquet; the split is broken, rebuild the graph")
    return table


@dataclass
class EngagementData:
    train: tuple  # (user node rows, table rows) of train engagements
    dev: tuple  # (user node rows, table rows, pool of table rows)
    test: tuple
    counts: dict


def engagement_data(graph, heldout: Heldout, table: TweetTable) -> EngagementData:
    """(user, tweet row) engagements per split; users are graph user nodes (EMB_DIR user rows)."""
    csr = graph.csr("user_tweet")
    indptr = np.asarray(csr.indptr)
    users = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))
    nodes = np.asarray(csr.indices, dtype=np.int64)
    node_to_row = np.full(graph.num_tweets, -1, dtype=np.int64)
    train_rows = table.rows(TRAIN)
    node_to_row[table.node[train_rows]] = train_rows
    rows = node_to_row[nodes]
    ok = rows >= 0
    tr = np.unique(np.stack([users[ok], rows[ok]], axis=1), axis=0)
    counts = {"train_edges": int(len(nodes)), "train_edges_without_text": int((~ok).sum()), "train_pairs": int(len(tr))}
    row_of = table.row_of()
    out = {}
    for name, code in (("dev", DEV), ("test", TEST)):
        e = heldout.engaged(name)
        u = e["user"].to_numpy(dtype=np.int64)
        r = np.asarray([row_of.get(t, -1) for t in e["tweet_id"].astype(str)], dtype=np.int64)
        if (r >= 0).any() and not (table.split[r[r >= 0]] == code).all():
            raise InputError(f"heldout engagements of split {name} point at tweets of another split; rebuild the graph")
        if len(u) and u.max() >= graph.num_users:
            raise InputError(f"heldout engagements: user node {u.max()} >= {graph.num_users} users of the graph; rebuild the graph")
        keep = (u >= 0) & (r >= 0)
        pairs = np.unique(np.stack([u[keep], r[keep]], axis=1), axis=0) if keep.any() else np.zeros((0, 2), np.int64)
        counts[f"{name}_engagements"] = int(len(e))
        counts[f"{name}_engagements_user_without_node"] = int((u < 0).sum())
        counts[f"{name}_engagements_without_text"] = int(((u >= 0) & (r < 0)).sum())
        counts[f"{name}_users"] = int(len(np.unique(pairs[:, 0])))
        out[name] = (pairs[:, 0], pairs[:, 1], table.rows(code))
    return EngagementData((tr[:, 0], tr[:, 1]), out["dev"], out["test"], counts)


def default_label_column(table: TweetTable) -> str:
    """The first label column with 2+ classes (e.g. hashtag/topic, subreddit)."""
    for preferred in ("hashtag", "subreddit", "label", "topic"):
        if preferred in table.labels.columns:
            return preferred
    for c in table.labels.columns:
        if table.labels[c].nunique(dropna=True) >= 2:
            return c
    raise InputError("classify: the texts table has no label column; pass --label-col or drop the classify task")


def classify_data(table: TweetTable, label_col: str, *, max_train: int = 0, seed: int = 0) -> dict:
    """Rows and labels per split for the logistic regression (rows without a label are left out)."""
    if label_col not in table.labels.columns:
        raise InputError(f"classify: label column {label_col!r} is not in the texts table; it has {list(table.labels.columns)}")
    y = table.labels[label_col]
    has = y.notna().to_numpy() & (y.astype(str).str.strip() != "").to_numpy()
    out = {}
    for name, code in (("train", TRAIN), ("dev", DEV), ("test", TEST)):
        rows = np.flatnonzero(has & (table.split == code))
        if name == "train" and max_train and len(rows) > max_train:
            rows = np.sort(np.random.default_rng([seed, 13]).choice(rows, size=max_train, replace=False))
        out[name] = (rows, y.iloc[rows].astype(str).to_numpy(dtype=object))
    return out


def file_pairs(table: TweetTable, path) -> tuple[np.ndarray, np.ndarray, dict]:
    """Query/target rows of a pair file's pairs whose two tweets are in the table."""
    from graph.split import _read_pair_ids
    from pathlib import Path

    import pandas as pd

    frame = _read_pair_ids(Path(path), pd)
    row_of = table.row_of()
    a = np.asarray([row_of.get(str(t), -1) for t in frame["tweet_a"]], dtype=np.int64)
    b = np.asarray([row_of.get(str(t), -1) for t in frame["tweet_b"]], dtype=np.int64)
    ok = (a >= 0) & (b >= 0) & (a != b)
    return a[ok], b[ok], {"pairs_in_file": int(len(frame)), "pairs_found": int(ok.sum())}
