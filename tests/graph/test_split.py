"""graph.split: a deterministic tweet split, the held-out part of a graph, and the leakage guard."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from coengage.errors import ArtifactError, InputError
from graph.split import (DEV, TEST, TRAIN, assign_split, attach_heldout, fractions_from_holdout, leaked_ids, load_heldout,
                         split_counts, split_log, write_heldout)
from graph.writer import write_graph


def test_split_depends_on_the_id_only_not_on_order_or_chunking():
    ids = [f"tw{i}" for i in range(5000)]
    whole = assign_split(ids, seed=3)
    perm = np.random.default_rng(0).permutation(len(ids))
    shuffled = assign_split([ids[i] for i in perm], seed=3)
    assert np.array_equal(shuffled, whole[perm])
    chunks = np.concatenate([assign_split(ids[s:s + 777], seed=3) for s in range(0, len(ids), 777)])
    assert np.array_equal(chunks, whole)
    # an integer id and its string form are the same tweet
    assert np.array_equal(assign_split(list(range(100)), seed=3), assign_split([str(i) for i in range(100)], seed=3))


def test_split_fractions_and_seed():
    ids = [str(i) for i in range(40000)]
    codes = assign_split(ids, seed=0, fractions=(0.8, 0.1, 0.1))
    assert codes.dtype == np.int8 and set(np.unique(codes)) == {TRAIN, DEV, TEST}
    share = np.bincount(codes, minlength=3) / len(ids)
    # binomial standard deviation at n=40000, p=0.1 is 0.0015; allow 4 sigma
    assert abs(share[0] - 0.8) < 0.008 and abs(share[1] - 0.1) < 0.006 and abs(share[2] - 0.1) < 0.006
    other = assign_split(ids, seed=1)
    assert 0.2 < np.mean(other != codes) < 0.5  # another seed is another split
    assert split_counts(codes)["dev_tweets"] == int((codes == DEV).sum())
    assert (assign_split(ids[:1000], fractions=(1.0, 0.0, 0.0)) == TRAIN).all()


def test_bad_fractions_are_refused():
    with pytest.raises(InputError, match="summing to 1"):
        assign_split(["a"], fractions=(0.8, 0.1))
    with pytest.raises(InputError):
        assign_split(["a"], fractions=(0.9, 0.2, -0.1))
    with pytest.raises(InputError, match="holdout"):
        fractions_from_holdout(1.5)
    assert fractions_from_holdout(0.2) == pytest.approx((0.8, 0.1, 0.1))


def _log(n_users=60, n_tweets=300, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        for t in rng.choice(n_tweets, 10, replace=False):
            rows.append((f"u{u}", f"t{t}", "fav", int(rng.integers(1e9))))
    eng = pd.DataFrame(rows, columns=["user_id", "tweet_id", "engagement", "timestamp"])
    texts = pd.DataFrame({"tweet_id": [f"t{t}" for t in range(n_tweets)], "text": [f"text {t}" for t in range(n_tweets)],
                          "hashtag": [f"#h{t % 5}" for t in range(n_tweets)]})
    return eng, texts


def build_split_graph(out, eng, texts, seed=0, fractions=(0.8, 0.1, 0.1), leak=()):
    """What `graph build --holdout` does: train tweets into the graph, the rest into heldout/.

    ``leak``: held-out tweet ids to put into the graph anyway (a broken build, for the guard test).
    """
    tweet_split = dict(zip(texts["tweet_id"], assign_split(texts["tweet_id"], seed=seed, fractions=fractions)))
    code = eng["tweet_id"].map(tweet_split).to_numpy()
    in_graph = (code == TRAIN) | eng["tweet_id"].isin(leak).to_numpy()
    tr = eng[in_graph]
    user_ids = sorted(set(tr["user_id"]))
    tweet_ids = sorted(set(tr["tweet_id"]))
    uidx = {u: i for i, u in enumerate(user_ids)}
    tidx = {t: i for i, t in enumerate(tweet_ids)}
    g = write_graph(out, user_ids=user_ids, tweet_ids=tweet_ids, users=tr["user_id"].map(uidx), tweets=tr["tweet_id"].map(tidx),
                    etypes=np.zeros(len(tr), np.int64), times=tr["timestamp"], relations=["fav"],
                    texts=texts[texts["tweet_id"].isin(tweet_ids)], write_dgl_binary=False)
    ho = eng[code != TRAIN].assign(user=lambda d: d["user_id"].map(uidx).fillna(-1).astype(np.int64),
                                   split=lambda d: d["tweet_id"].map(tweet_split))
    tx = texts.assign(split=texts["tweet_id"].map(tweet_split))
    tx = tx[tx["split"] != TRAIN]
    info = write_heldout(out, ho, tx, seed=seed, fractions=fractions, train_tweets=len(tweet_ids))
    return g, info


def test_write_and_load_heldout(tmp_path):
    eng, texts = _log()
    g, info = build_split_graph(tmp_path / "g", eng, texts)
    manifest = json.loads((tmp_path / "g" / "manifest.json").read_text())
    assert manifest["split"] == info
    assert manifest["fingerprint"] == g.fingerprint  # adding the split does not change the graph fingerprint
    assert "heldout/engagements.parquet" in manifest["files"]
    held = load_heldout(tmp_path / "g")
    assert set(held.engagements["split"]) == {"dev", "test"}
    assert list(held.engagements.columns[:6]) == ["user_id", "user", "tweet_id", "engagement", "timestamp", "split"]
    assert held.engagements["user"].dtype == np.int64 and held.engagements["timestamp"].dtype == np.int64
    assert "hashtag" in held.texts.columns
    expected = eng[eng["tweet_id"].map(dict(zip(texts["tweet_id"], assign_split(texts["tweet_id"])))) != TRAIN]
    assert len(held.engagements) == len(expected) == info["counts"]["dev_engagements"] + info["counts"]["test_engagements"]
    # a user's node id in heldout/ is their node in the graph, or -1 when the graph has no such user
    users = dict(zip(g.user_ids, range(g.num_users)))
    for uid, node in zip(held.engagements["user_id"], held.engagements["user"]):
        assert node == users.get(uid, -1)
    assert info["counts"]["train_tweets"] == g.num_tweets


def test_tampered_or_missing_heldout_is_refused(tmp_path):
    eng, texts = _log()
    build_split_graph(tmp_path / "g", eng, texts)
    path = tmp_path / "g" / "heldout" / "texts.parquet"
    frame = pd.read_parquet(path)
    frame.iloc[:-1].to_parquet(path, index=False)
    with pytest.raises(ArtifactError, match="changed after the graph was built"):
        load_heldout(tmp_path / "g")
    plain = write_graph(tmp_path / "plain", user_ids=["u"], tweet_ids=["t"], users=[0], tweets=[0], etypes=[0], times=[0],
                        relations=["fav"], write_dgl_binary=False)
    with pytest.raises(ArtifactError, match="--holdout"):
        load_heldout(plain.path)


def test_bad_heldout_input_names_the_column(tmp_path):
    with pytest.raises(InputError, match="user"):
        write_heldout(tmp_path, pd.DataFrame({"user_id": ["a"], "tweet_id": ["t"]}), pd.DataFrame(columns=["tweet_id", "text", "split"]),
                      seed=0, fractions=(0.8, 0.1, 0.1))


def test_leakage_guard_holds_for_a_split_build_and_catches_a_leak(tmp_path):
    """The guard: no held-out tweet id in tweet_ids.parquet, texts.parquet or a pair file."""
    eng, texts = _log()
    g, _ = build_split_graph(tmp_path / "g", eng, texts)
    held = load_heldout(tmp_path / "g")
    heldout_ids = set(held.texts["tweet_id"]) | set(held.engagements["tweet_id"])
    assert heldout_ids and not heldout_ids & set(g.tweet_ids) and not heldout_ids & set(g.texts()["tweet_id"])
    train_ids = list(g.tweet_ids)
    clean = tmp_path / "pairs.parquet"
    pd.DataFrame({"tweet_a": train_ids[:20], "tweet_b": train_ids[20:40], "score": 1.0, "method": "x"}).to_parquet(clean)
    assert all(v == [] for v in leaked_ids(tmp_path / "g", [clean]).values())

    leaky_pairs = tmp_path / "leaky.tsv"
    some = sorted(heldout_ids)[:2]
    pd.DataFrame({"tweet_a": [train_ids[0], some[0]], "tweet_b": [some[1], train_ids[1]], "score": 1.0, "method": "x"}).to_csv(
        leaky_pairs, sep="\t", index=False)
    assert leaked_ids(tmp_path / "g", [leaky_pairs])[str(leaky_pairs)] == sorted(some)

    leaked_tweet = sorted(set(held.engagements["tweet_id"]))[0]
    build_split_graph(tmp_path / "bad", eng, texts, leak=[leaked_tweet])
    found = leaked_ids(tmp_path / "bad")
    assert found["tweet_ids.parquet"] == [leaked_tweet]
    assert found["texts.parquet"] == [leaked_tweet]


def test_split_log_then_attach_heldout_equals_a_split_build(tmp_path):
    """split_log + build from the train part + attach_heldout gives the held-out part build_split_graph writes."""
    eng, texts = _log()
    train_log, held_log, train_texts, held_texts = split_log(eng, texts, seed=0, fractions=(0.8, 0.1, 0.1))
    assert len(train_log) + len(held_log) == len(eng) and set(held_log["split"]) <= {"dev", "test"}
    user_ids = sorted(set(train_log["user_id"]))
    tweet_ids = sorted(set(train_log["tweet_id"]))
    uidx = {u: i for i, u in enumerate(user_ids)}
    tidx = {t: i for i, t in enumerate(tweet_ids)}
    write_graph(tmp_path / "a", user_ids=user_ids, tweet_ids=tweet_ids, users=train_log["user_id"].map(uidx),
                tweets=train_log["tweet_id"].map(tidx), etypes=np.zeros(len(train_log), np.int64), times=train_log["timestamp"],
                relations=["fav"], texts=train_texts, write_dgl_binary=False)
    attach_heldout(tmp_path / "a", held_log, held_texts, seed=0, fractions=(0.8, 0.1, 0.1))
    build_split_graph(tmp_path / "b", eng, texts)
    a, b = load_heldout(tmp_path / "a"), load_heldout(tmp_path / "b")
    cols = ["user_id", "user", "tweet_id", "engagement", "timestamp", "split"]
    pd.testing.assert_frame_equal(a.engagements[cols], b.engagements[cols])
    assert sorted(a.texts["tweet_id"]) == sorted(b.texts["tweet_id"])
    with pytest.raises(InputError, match="in the graph"):
        attach_heldout(tmp_path / "b", eng.iloc[:0].assign(split=[]), texts[texts["tweet_id"].isin(tweet_ids)].assign(split="dev"),
                       seed=0, fractions=(0.8, 0.1, 0.1))
