"""Spark engine vs local engine on the same graph artifact: identical candidates, pairs and scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from graph.artifact import load
from graph.build import BuildConfig, build_graph
from mining.coengagement import coengagement_pairs
from mining.mine import mine
from mining.spark.coengage import coengage_candidates
from mining.spark.session import SparkOptions
from mining.spark.sources import collect_candidates, graph_edges, scratch_dir
from tests.spark.spark_fixtures import make_log

CAP = 25


@pytest.fixture(scope="module")
def log_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("log")
    frame, texts = make_log(seed=1)
    frame.to_parquet(d / "log.parquet", index=False)
    texts.to_parquet(d / "texts.parquet", index=False)
    return d


@pytest.fixture(scope="module")
def graph(log_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("g") / "g"
    cfg = BuildConfig(log=[str(log_files / "log.parquet")], texts=[str(log_files / "texts.parquet")], out=str(out),
                      no_dgl=True)
    build_graph(cfg)
    return load(out)


@pytest.fixture(scope="module")
def edges(spark, graph, tmp_path_factory):
    return graph_edges(spark, graph, tmp_path_factory.mktemp("edges"))


def _local(graph, **kw):
    tu, ut = graph.csr("tweet_user"), graph.csr("user_tweet")
    return coengagement_pairs(tu.indptr, tu.indices, tu.time, ut.indptr, ut.indices, ut.time, progress=False, **kw)


def _as_dict(a, b, s):
    return {(int(x), int(y)): float(v) for x, y, v in zip(a, b, s)}


def test_the_fixture_exercises_cap_and_window(graph):
    ut = graph.csr("user_tweet")
    deg = np.diff(np.asarray(ut.indptr))
    assert deg.max() > CAP  # the bot is above the cap
    assert graph.manifest["duplicates_merged"] > 0
    no_window = _local(graph, max_user_degree=CAP, min_count=1)
    window = _local(graph, max_user_degree=CAP, min_count=1, window_s=1800)
    assert 0 < len(window[0]) < len(no_window[0])


@pytest.mark.parametrize("normalize,window_s,top_k,min_count", [
    ("count", None, None, 2), ("cosine", None, None, 1), ("jaccard", 1800, None, 2), ("swing", None, None, 2),
    ("swing", 3600, 5, 1), ("count", 1800, 3, 1),
])
def test_candidates_identical(spark, graph, edges, tmp_path, normalize, window_s, top_k, min_count):
    kw = dict(max_user_degree=CAP, window_s=window_s, min_count=min_count, normalize=normalize, top_k=top_k)
    la, lb, ls = _local(graph, **kw)
    sa, sb, ss = collect_candidates(coengage_candidates(edges, **kw, salt=3 if top_k else 1), tmp_path)
    local, remote = _as_dict(la, lb, ls), _as_dict(sa, sb, ss)
    assert len(local) == len(la) and len(local) > 50
    assert set(remote) == set(local)  # exactly the same directed pairs (top-k ties included)
    diff = max(abs(remote[k] - local[k]) for k in local)
    assert diff <= 1e-12


@pytest.mark.parametrize("normalize,window_s", [("count", None), ("swing", 7200)])
def test_mine_identical_pairs(spark, graph, normalize, window_s):
    kw = dict(max_user_degree=CAP, window_s=window_s, normalize=normalize, top_k=8, max_pairs_per_tweet=4,
              popularity_cap=6, progress=False)
    local = mine(graph.path, "coengage", None, **kw)
    remote = mine(graph.path, "coengage", None, engine="spark", spark_options=SparkOptions(), **kw)
    assert local.counts["written"] > 20
    for key in ("candidates", "written", "over_max_per_tweet", "duplicates", "over_popularity_cap",
                "without_text", "near_duplicate_text"):
        assert remote.counts[key] == local.counts[key], key
    assert np.array_equal(remote.a, local.a) and np.array_equal(remote.b, local.b)
    assert np.max(np.abs(remote.score - local.score)) <= 1e-12
    assert remote.manifest["config"]["engine"] == "spark"


def test_cli_acceptance(spark, graph, tmp_path, capsys):
    """`coengage mine GRAPH --method coengage --engine spark --out P` writes the local engine's pair file."""
    from coengage.cli import main

    local, remote = tmp_path / "local.parquet", tmp_path / "spark.parquet"
    common = [str(graph.path), "--method", "coengage", "--max-user-degree", str(CAP), "--no-progress"]
    assert main(["mine", *common, "--out", str(local)]) == 0
    assert main(["mine", *common, "--engine", "spark", "--out", str(remote)]) == 0
    a, b = pd.read_parquet(local), pd.read_parquet(remote)
    assert len(a) > 20
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=0, atol=1e-12)
