"""`graph build --holdout`: the leakage guard. Dev/test tweets, their texts and engagements go to
GRAPH_DIR/heldout/ and nowhere else; the train graph is exactly the build of the train rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from graph.artifact import load
from graph.build import BuildConfig, build_graph
from graph.split import TRAIN, assign_split, leaked_ids, load_heldout


@pytest.fixture
def log_and_texts(tmp_path):
    rng = np.random.default_rng(3)
    n = 3000
    log = pd.DataFrame({
        "user_id": [f"u{i}" for i in rng.integers(0, 150, n)],
        "tweet_id": [f"t{i}" for i in rng.integers(0, 400, n)],
        "engagement": rng.choice(["fav", "retweet", "reply"], n),
        "timestamp": rng.integers(1_600_000_000, 1_600_100_000, n),
    })
    texts = pd.DataFrame({"tweet_id": [f"t{i}" for i in range(400)], "text": [f"text {i}" for i in range(400)],
                          "topic": [i % 5 for i in range(400)]})
    log.to_parquet(tmp_path / "log.parquet", index=False)
    texts.to_parquet(tmp_path / "texts.parquet", index=False)
    return tmp_path, log, texts


def _build(tmp_path, out, **kw):
    cfg = BuildConfig(log=[str(tmp_path / "log.parquet")], texts=[str(tmp_path / "texts.parquet")], no_dgl=True, **kw)
    return build_graph(cfg, out)


def test_heldout_tweets_are_nowhere_in_the_train_graph(log_and_texts):
    tmp_path, log, texts = log_and_texts
    g = _build(tmp_path, tmp_path / "g", holdout=0.2, split_seed=7)
    held = load_heldout(g.path)
    assert all(len(v) == 0 for v in leaked_ids(g.path).values())
    codes = dict(zip(log["tweet_id"], assign_split(log["tweet_id"].to_numpy(), 7, (0.8, 0.1, 0.1))))
    assert all(codes[t] == TRAIN for t in g.tweet_ids)
    assert set(held.engagements["tweet_id"]) == {t for t, c in codes.items() if c != TRAIN}
    # every raw row of a held-out tweet is kept, with the right split name
    held_rows = log[log["tweet_id"].map(codes) != TRAIN]
    assert len(held.engagements) == len(held_rows)
    assert set(held.engagements["split"]) <= {"dev", "test"}
    assert 0.1 < held.texts["tweet_id"].nunique() / len(texts) < 0.3
    assert not set(g.texts()["tweet_id"]) & set(held.texts["tweet_id"])


def test_train_graph_equals_a_build_of_the_train_rows_alone(log_and_texts):
    tmp_path, log, texts = log_and_texts
    g = _build(tmp_path, tmp_path / "g", holdout=0.2, split_seed=7)
    train_rows = log[assign_split(log["tweet_id"].to_numpy(), 7, (0.8, 0.1, 0.1)) == TRAIN]
    (tmp_path / "train").mkdir()
    train_rows.to_parquet(tmp_path / "train" / "log.parquet", index=False)
    ref = build_graph(BuildConfig(log=[str(tmp_path / "train" / "log.parquet")], no_dgl=True), tmp_path / "ref")
    assert list(g.user_ids) == list(ref.user_ids)
    assert list(g.tweet_ids) == list(ref.tweet_ids)
    for direction in ("user_tweet", "tweet_user"):
        a, b = g.csr(direction), ref.csr(direction)
        for field in ("indptr", "indices", "etype", "time", "count"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_heldout_users_map_to_train_nodes_or_minus_one(log_and_texts):
    tmp_path, _, _ = log_and_texts
    g = _build(tmp_path, tmp_path / "g", holdout=0.3, split_seed=1)
    eng = load_heldout(g.path).engagements
    index = {u: i for i, u in enumerate(g.user_ids)}
    expected = eng["user_id"].map(lambda u: index.get(u, -1))
    np.testing.assert_array_equal(eng["user"].to_numpy(), expected.to_numpy())
    assert g.manifest["split"]["seed"] == 1


def test_no_holdout_means_no_heldout_part(log_and_texts):
    tmp_path, _, _ = log_and_texts
    g = _build(tmp_path, tmp_path / "g")
    assert "split" not in g.manifest
    assert not (g.path / "heldout").exists()
    from coengage.errors import ArtifactError

    with pytest.raises(ArtifactError, match="--holdout"):
        load_heldout(g.path)


def test_holdout_out_of_range_is_refused(log_and_texts):
    from coengage.errors import InputError

    tmp_path, _, _ = log_and_texts
    with pytest.raises(InputError, match="holdout"):
        _build(tmp_path, tmp_path / "g", holdout=1.0)
    assert not (tmp_path / "g").exists()
