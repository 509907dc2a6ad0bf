"""`coengage mine`: the acceptance commands, quality on planted topics, manifests, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from coengage.cli import main
from mining.mine import mine
from mining.pairs_io import read_manifest, read_pairs

sys.path.insert(0, str(Path(__file__).parent))
from mining_fixtures import planted_graph, topic_vectors, write_embeddings  # noqa: E402

TOPICS, PER_TOPIC = 4, 30


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    root = tmp_path_factory.mktemp("mine")
    # tweets 0 and 1 (same topic) share their text up to a URL and a mention: a retweet
    overrides = {0: "Breaking: the college library opens late tonight https://t.co/abc",
                 1: "RT @news: breaking the college library opens late tonight"}
    return planted_graph(root / "g", n_topics=TOPICS, tweets_per_topic=PER_TOPIC, texts_override=overrides)


@pytest.fixture(scope="module")
def emb(graph, tmp_path_factory):
    return write_embeddings(tmp_path_factory.mktemp("emb") / "e", graph, topic_vectors(graph, TOPICS, PER_TOPIC))


def _check_pair_file(path, method):
    frame = read_pairs(path)
    assert list(frame.columns[:4]) == ["tweet_a", "tweet_b", "score", "method"]
    for col in ("tweet_a", "tweet_b", "method"):
        assert all(isinstance(v, str) for v in frame[col])
    assert frame["score"].dtype == np.float64
    assert set(frame["method"]) == {method}
    assert (frame["tweet_a"] != frame["tweet_b"]).all()
    unordered = {frozenset(p) for p in zip(frame["tweet_a"], frame["tweet_b"])}
    assert len(unordered) == len(frame) > 0
    return frame


def _topic(tweet_id: str) -> int:
    return int(tweet_id[1:]) // PER_TOPIC


def _quality(frame, graph):
    same = np.mean([_topic(a) == _topic(b) for a, b in zip(frame["tweet_a"], frame["tweet_b"])])
    paired = set(frame["tweet_a"]) | set(frame["tweet_b"])
    tu = graph.csr("tweet_user")
    engaged = [graph.tweet_ids[t] for t in range(graph.num_tweets)
               if len(set(np.asarray(tu.indices[tu.indptr[t]:tu.indptr[t + 1]]).tolist())) >= 2]
    coverage = np.mean([t in paired for t in engaged])
    return same, coverage


def test_walk_acceptance_same_seed_same_table(graph, tmp_path):
    g = str(graph.path)
    assert main(["mine", g, "--method", "walk", "--out", str(tmp_path / "w1.parquet"), "--seed", "0"]) == 0
    assert main(["mine", g, "--method", "walk", "--out", str(tmp_path / "w2.parquet"), "--seed", "0"]) == 0
    assert main(["mine", g, "--method", "walk", "--out", str(tmp_path / "w3.parquet"), "--seed", "1"]) == 0
    w1 = _check_pair_file(tmp_path / "w1.parquet", "walk")
    pd.testing.assert_frame_equal(w1, read_pairs(tmp_path / "w2.parquet"))
    assert not w1.equals(read_pairs(tmp_path / "w3.parquet"))  # the seed matters
    same, coverage = _quality(w1, graph)
    assert same >= 0.95 and coverage >= 0.8
    m = read_manifest(tmp_path / "w1.parquet")
    assert m["graph_fingerprint"] == graph.fingerprint and m["method"] == "walk"
    assert m["config"]["walk"]["seed"] == 0 and m["config"]["postprocess"]["max_pairs_per_tweet"] == 10
    assert m["counts"]["written"] == len(w1)
    # the retweet pair (t0000, t0001) was a candidate only if co-engaged; it must never be written
    assert frozenset({"t0000", "t0001"}) not in {frozenset(p) for p in zip(w1["tweet_a"], w1["tweet_b"])}


def test_coengage_acceptance_and_quality(graph, tmp_path):
    out = tmp_path / "co.parquet"
    assert main(["mine", str(graph.path), "--method", "coengage", "--out", str(out)]) == 0
    frame = _check_pair_file(out, "coengage")
    same, coverage = _quality(frame, graph)
    assert same >= 0.95 and coverage >= 0.8
    # planted users engage only inside their topic: every co-engaged pair is same-topic
    assert same == 1.0
    assert (frame["score"] >= 2).all()  # --min-count 2 by default, score = shared engagers


def test_knn_acceptance(graph, emb, tmp_path):
    out = tmp_path / "knn.parquet"
    assert main(["mine", str(graph.path), "--method", "knn", "--embeddings", str(emb), "--out", str(out),
                 "--index", "exact"]) == 0
    frame = _check_pair_file(out, "knn")
    assert (frame["score"] <= 1.0 + 1e-6).all()
    same, _ = _quality(frame, graph)
    assert same >= 0.95
    m = read_manifest(out)
    assert m["info"]["index"] == "exact" and m["config"]["knn"]["embeddings"] == str(emb)


def test_near_duplicate_texts_are_dropped_and_counted(graph):
    kept = mine(graph.path, method="coengage", min_count=1, progress=False)
    assert (0, 1) not in set(zip(kept.a.tolist(), kept.b.tolist()))
    assert kept.counts["near_duplicate_text"] >= 2  # (0, 1) and (1, 0) are both candidates
    every = mine(graph.path, method="coengage", min_count=1, drop_near_duplicates=False, progress=False)
    assert (0, 1) in set(zip(every.a.tolist(), every.b.tolist())) and every.counts["near_duplicate_text"] == 0


def test_counts_add_up_and_caps_hold(graph):
    r = mine(graph.path, method="walk", max_pairs_per_tweet=3, popularity_cap=5, progress=False)
    c = r.counts
    assert c["candidates"] == c["written"] + sum(c[k] for k in (
        "self_pairs", "below_threshold", "without_text", "near_duplicate_text", "over_max_per_tweet",
        "duplicates", "over_popularity_cap"))
    assert np.bincount(np.concatenate([r.a, r.b])).max() <= 5
    assert c["over_max_per_tweet"] > 0


def test_with_text_and_tsv_format(graph, tmp_path):
    out = tmp_path / "pairs.txt"
    assert main(["mine", str(graph.path), "--method", "coengage", "--out", str(out), "--format", "tsv",
                 "--with-text"]) == 0
    frame = read_pairs(out, fmt="tsv")
    texts = graph.texts().set_index("tweet_id")["text"]
    assert frame["text_a"].tolist() == texts.loc[frame["tweet_a"]].tolist()
    assert frame["text_b"].tolist() == texts.loc[frame["tweet_b"]].tolist()


def test_tweets_without_text_warn_or_fail_with_strict(tmp_path, capsys):
    g = planted_graph(tmp_path / "g", n_topics=2, tweets_per_topic=20, users_per_topic=15, no_text={3, 4})
    out = tmp_path / "p.parquet"
    assert main(["mine", str(g.path), "--method", "coengage", "--out", str(out)]) == 0
    m = read_manifest(out)
    assert m["counts"]["tweets_without_text"] == 2 and m["counts"]["without_text"] > 0
    frame = read_pairs(out)
    assert not ({"t0003", "t0004"} & (set(frame["tweet_a"]) | set(frame["tweet_b"])))
    assert main(["mine", str(g.path), "--method", "coengage", "--out", str(tmp_path / "s.parquet"), "--strict"]) == 2
    assert "without text" in capsys.readouterr().err
    assert not (tmp_path / "s.parquet").exists()


def test_knn_refuses_foreign_or_missing_embeddings(graph, tmp_path, capsys):
    foreign = write_embeddings(tmp_path / "foreign", graph, np.ones((graph.num_tweets, 4)), fingerprint="feedfacecafebeef")
    out = tmp_path / "p.parquet"
    assert main(["mine", str(graph.path), "--method", "knn", "--embeddings", str(foreign), "--out", str(out)]) == 2
    assert "feedfacecafebeef" in capsys.readouterr().err
    assert main(["mine", str(graph.path), "--method", "knn", "--out", str(out)]) == 2
    assert "--embeddings" in capsys.readouterr().err
    assert main(["mine", str(tmp_path / "nograph"), "--out", str(out)]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert not out.exists()


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["mine", "--help"])
    text = capsys.readouterr().out
    for opt in ("--method", "--embeddings", "--top-k", "--max-pairs-per-tweet", "--popularity-cap", "--min-score",
                "--walks-per-query", "--walk-length", "--restart-prob", "--max-user-degree", "--degree-cap-mode",
                "--min-visits", "--seed", "--window-s", "--min-count", "--normalize", "--index", "--pq",
                "--with-text", "--format", "--strict", "default: 10", "default: 50"):
        assert opt in text, opt
    with pytest.raises(SystemExit):
        main(["mine", "report", "--help"])
    assert "--graph" in capsys.readouterr().out


def test_mining_runs_without_importing_dgl(graph, tmp_path):
    code = (f"import sys; from mining.mine import mine; mine({str(graph.path)!r}, method='coengage', "
            f"out={str(tmp_path / 'p.parquet')!r}, progress=False); print('dgl' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    assert json.loads((tmp_path / "p.parquet.manifest.json").read_text())["counts"]["written"] > 0


def test_mine_replaces_only_its_own_pair_files_and_never_an_input(graph, emb, tmp_path, capsys):
    base = ["mine", str(graph.path), "--method", "coengage", "--no-progress"]
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    assert main(base + ["--out", str(notes)]) == 2
    assert "is not a pair file" in capsys.readouterr().err and notes.read_text() == "keep me"
    for out in (graph.path, graph.path.parent):  # the graph itself, or a directory holding it
        assert main(base + ["--out", str(out), "--overwrite"]) == 2
        assert "would replace the input" in capsys.readouterr().err
    assert (graph.path / "manifest.json").exists()
    knn = ["mine", str(graph.path), "--method", "knn", "--embeddings", str(emb), "--no-progress", "--overwrite"]
    assert main(knn + ["--out", str(emb)]) == 2 and (emb / "manifest.json").exists()
    capsys.readouterr()
    pairs = tmp_path / "p.parquet"
    assert main(base + ["--out", str(pairs)]) == 0
    assert main(base + ["--out", str(pairs), "--top-k", "5"]) == 0  # an earlier pair file is replaced
    assert read_manifest(pairs)["config"]["coengage"]["top_k"] == 5
    assert main(base + ["--out", str(notes), "--overwrite"]) == 0 and len(read_pairs(notes)) > 0
    # the report directory: an earlier report is replaced, anything else refused
    assert main(["mine", "report", str(pairs), "--graph", str(graph.path)]) == 0
    assert main(["mine", "report", str(pairs), "--graph", str(graph.path)]) == 0
    foreign = tmp_path / "rep"
    foreign.mkdir()
    (foreign / "x.txt").write_text("1")
    capsys.readouterr()
    assert main(["mine", "report", str(pairs), "--graph", str(graph.path), "--out", str(foreign)]) == 2
    assert "--overwrite" in capsys.readouterr().err and (foreign / "x.txt").exists()
    assert main(["mine", "report", str(pairs), "--graph", str(graph.path), "--out", str(foreign), "--overwrite"]) == 0
    assert (foreign / "report.html").exists() and not (foreign / "x.txt").exists()
