"""Spark engine on raw logs (and partitioned output) vs local `graph build` + local coengage."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from coengage.errors import InputError
from graph.build import BuildConfig, build_graph
from mining.mine import mine
from mining.spark.engine import mine_spark
from mining.spark.session import SparkOptions
from tests.spark.spark_fixtures import make_log

CAP = 25
MINE = dict(max_user_degree=CAP, top_k=8, max_pairs_per_tweet=4, popularity_cap=6, progress=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A dirty log split over two CSV files (file order matters for node ids), and a texts table."""
    d = tmp_path_factory.mktemp("rawlog")
    frame, texts = make_log(seed=2, dirty=True)
    half = len(frame) // 2
    frame.iloc[:half].to_csv(d / "log-a.csv", index=False)
    frame.iloc[half:].to_csv(d / "log-b.csv", index=False)
    texts.to_parquet(d / "texts.parquet", index=False)
    return d


@pytest.fixture(scope="module")
def build_cfg(files):
    return BuildConfig(log=[str(files / "log-*.csv")], texts=[str(files / "texts.parquet")], no_dgl=True)


@pytest.fixture(scope="module")
def graph(build_cfg, tmp_path_factory):
    return build_graph(build_cfg, out=tmp_path_factory.mktemp("g") / "g")


def _read(path):
    return pd.read_parquet(path).reset_index(drop=True)


def _same_pairs(local: pd.DataFrame, remote: pd.DataFrame):
    assert len(local) > 20
    assert list(remote.columns) == list(local.columns)
    key = lambda f: set(zip(f["tweet_a"], f["tweet_b"]))  # noqa: E731
    assert key(remote) == key(local)
    assert (remote[["tweet_a", "tweet_b", "method"]].values == local[["tweet_a", "tweet_b", "method"]].values).all()
    assert (remote["score"] - local["score"]).abs().max() <= 1e-12


@pytest.mark.parametrize("normalize,window_s,output", [("count", None, "single"), ("swing", 1800, "single"),
                                                       ("cosine", 3600, "partitioned")])
def test_raw_logs_same_pairs_as_local_build(spark, graph, build_cfg, tmp_path, normalize, window_s, output):
    local = mine(graph.path, "coengage", tmp_path / "local.parquet", normalize=normalize, window_s=window_s, **MINE)
    remote = mine_spark(None, "coengage", tmp_path / "spark.parquet", build_config=build_cfg,
                        spark_options=SparkOptions(output=output), normalize=normalize, window_s=window_s, **MINE)
    _same_pairs(_read(tmp_path / "local.parquet"), _read(tmp_path / "spark.parquet"))
    m = remote.manifest
    # the same cleaning: the same rows dropped, per reason, and the same edges
    assert m["cleaning"]["dropped"] == graph.manifest["dropped"]
    assert sum(m["cleaning"]["dropped"].values()) == 6
    assert m["cleaning"]["rows_read"] == graph.manifest["rows_read"]
    assert m["cleaning"]["edges"] == graph.num_edges
    # relations with edges (the local build also lists a type seen only in dropped rows, with 0 edges)
    assert m["cleaning"]["relations"] == [r for r in graph.relations if graph.manifest["num_edges"][r] > 0]
    for key in ("candidates", "written", "over_max_per_tweet", "duplicates", "over_popularity_cap", "without_text",
                "near_duplicate_text", "tweets", "tweets_without_text", "tweets_paired", "tweets_with_2plus_engagers"):
        assert m["counts"][key] == local.counts[key], key
    assert m["coverage_2plus_engagers"] == pytest.approx(local.manifest["coverage_2plus_engagers"], abs=1e-12)
    written = json.loads((tmp_path / "spark.parquet.manifest.json").read_text())
    assert written["kind"] == "coengage.pairs" and written["rows"] == local.counts["written"]


def test_partitioned_from_graph_with_text(spark, graph, tmp_path):
    """--spark-output partitioned on GRAPH_DIR: a directory of parts equal to the local pair file."""
    kw = dict(normalize="jaccard", with_text=True, **MINE)
    mine(graph.path, "coengage", tmp_path / "local.parquet", **kw)
    remote = mine_spark(graph.path, "coengage", tmp_path / "parts", spark_options=SparkOptions(output="partitioned"),
                        **kw)
    assert (tmp_path / "parts").is_dir() and list((tmp_path / "parts").glob("part-*.parquet"))
    local, parts = _read(tmp_path / "local.parquet"), _read(tmp_path / "parts")
    _same_pairs(local, parts)
    assert (parts["text_a"].values == local["text_a"].values).all()
    assert remote.manifest["layout"] == "partitioned"
    # the directory passes the manifest check and is what `lm train --pairs` reads
    from lm.data import load_pairs, pairs_fingerprint
    from mining.pairs_io import read_manifest

    assert read_manifest(tmp_path / "parts")["fingerprint"] == pairs_fingerprint(tmp_path / "parts")
    assert len(load_pairs(tmp_path / "parts")) == len(local)


def test_partitioned_without_popularity_cap_written_by_executors(spark, graph, tmp_path):
    kw = dict(MINE, popularity_cap=None, normalize="count")
    mine(graph.path, "coengage", tmp_path / "local.parquet", **kw)
    mine_spark(graph.path, "coengage", tmp_path / "parts", spark_options=SparkOptions(output="partitioned"), **kw)
    _same_pairs(_read(tmp_path / "local.parquet"), _read(tmp_path / "parts"))


def test_strict_names_file_row_and_column(spark, build_cfg, tmp_path):
    cfg = build_cfg.updated(strict=True)
    with pytest.raises(InputError) as e:
        mine_spark(None, "coengage", tmp_path / "p.parquet", build_config=cfg, **MINE)
    msg = str(e.value)
    # the first bad row is the 51st data row of log-a.csv (line 52): an empty user id
    assert "log-a.csv" in msg and "row 51 (line 52)" in msg and "'user_id'" in msg and "--strict" in msg
    assert not (tmp_path / "p.parquet").exists()
    # the local build says the same
    with pytest.raises(InputError) as e2:
        build_graph(cfg, out=tmp_path / "g")
    assert "row 51 (line 52)" in str(e2.value)


def test_missing_column_names_file_and_column(spark, files, tmp_path):
    cfg = BuildConfig(log=[str(files / "log-a.csv")], user_col="uid")
    with pytest.raises(InputError, match=r"log-a\.csv: missing required column 'uid' \(user column\)"):
        mine_spark(None, "coengage", tmp_path / "p.parquet", build_config=cfg, **MINE)


def test_unknown_type_error_and_drop(spark, files, tmp_path):
    cfg = BuildConfig(log=[str(files / "log-*.csv")], texts=[str(files / "texts.parquet")], types="fav=1,retweet=2")
    with pytest.raises(InputError, match=r"log-a\.csv: unknown engagement type 'reply'; known types: fav, retweet"):
        mine_spark(None, "coengage", tmp_path / "p.parquet", build_config=cfg, **MINE)
    dropped = cfg.updated(unknown_types="drop")
    g = build_graph(dropped.updated(no_dgl=True), out=tmp_path / "g")
    r = mine_spark(None, "coengage", tmp_path / "p.parquet", build_config=dropped, **MINE)
    assert r.manifest["cleaning"]["dropped"] == g.manifest["dropped"]
    assert r.manifest["cleaning"]["dropped"]["unknown_type"] > 100


@pytest.mark.parametrize("fmt", ["csv", "parquet-int", "parquet-float"])
def test_millisecond_timestamps_with_time_unit_match_local_and_seconds(spark, tmp_path, fmt):
    """--time-unit ms: Spark's string (UDF), bigint and double paths floor to the same seconds as the
    local build, and those seconds equal the log written in seconds (same windowed pairs)."""
    import numpy as np

    frame, texts = make_log(seed=5)
    ms = frame.copy()
    ms["timestamp"] = frame["timestamp"] * 1000 + np.random.default_rng(0).integers(0, 1000, len(frame))
    (tmp_path / "s").mkdir()
    (tmp_path / "ms").mkdir()
    frame.to_parquet(tmp_path / "s" / "log.parquet", index=False)
    texts.to_parquet(tmp_path / "texts.parquet", index=False)
    if fmt == "csv":
        ms.to_csv(tmp_path / "ms" / "log.csv", index=False)
    else:
        ms.astype({"timestamp": np.float64 if fmt == "parquet-float" else np.int64}).to_parquet(tmp_path / "ms" / "log.parquet", index=False)
    logs = [str(next((tmp_path / "ms").iterdir()))]
    texts_ = [str(tmp_path / "texts.parquet")]
    cfg = BuildConfig(log=logs, texts=texts_, no_dgl=True, time_unit="ms")
    g_ms = build_graph(cfg, out=tmp_path / "g_ms")
    g_s = build_graph(BuildConfig(log=[str(tmp_path / "s" / "log.parquet")], texts=texts_, no_dgl=True), out=tmp_path / "g_s")
    assert np.array_equal(np.asarray(g_ms.csr("user_tweet").time), np.asarray(g_s.csr("user_tweet").time))
    opts = dict(normalize="swing", window_s=1800, **MINE)
    mine(g_ms.path, "coengage", tmp_path / "local.parquet", **opts)
    mine(g_s.path, "coengage", tmp_path / "seconds.parquet", **opts)
    mine_spark(None, "coengage", tmp_path / "spark.parquet", build_config=cfg, spark_options=SparkOptions(output="single"), **opts)
    _same_pairs(_read(tmp_path / "local.parquet"), _read(tmp_path / "spark.parquet"))
    _same_pairs(_read(tmp_path / "seconds.parquet"), _read(tmp_path / "local.parquet"))


def test_millisecond_timestamps_read_as_seconds_are_warned_about(spark, tmp_path, caplog):
    import logging

    frame, texts = make_log(seed=6)
    frame["timestamp"] = frame["timestamp"] * 1000
    frame.to_parquet(tmp_path / "log.parquet", index=False)
    texts.to_parquet(tmp_path / "texts.parquet", index=False)
    cfg = BuildConfig(log=[str(tmp_path / "log.parquet")], texts=[str(tmp_path / "texts.parquet")], no_dgl=True)
    caplog.set_level(logging.WARNING)
    mine_spark(None, "coengage", tmp_path / "p.parquet", build_config=cfg, spark_options=SparkOptions(output="single"), **MINE)
    assert "they look like milliseconds; pass --time-unit ms" in caplog.text
    with pytest.raises(InputError, match="--time-unit ms"):
        mine_spark(None, "coengage", tmp_path / "q.parquet", build_config=BuildConfig(**{**cfg.__dict__, "strict": True}),
                   spark_options=SparkOptions(output="single"), **MINE)
