"""`graph stats --engine spark` over raw logs vs `graph stats` of the locally built graph."""

from __future__ import annotations

import pytest

from graph.build import BuildConfig, build_graph
from graph.spark_stats import compute_stats_spark
from graph.stats import compute_stats
from tests.spark.spark_fixtures import make_log


def test_stats_match_local_build(spark, tmp_path):
    frame, _ = make_log(seed=3, dirty=True)
    frame.to_csv(tmp_path / "log.csv", index=False)
    cfg = BuildConfig(log=[str(tmp_path / "log.csv")], no_dgl=True)
    local = compute_stats(build_graph(cfg, out=tmp_path / "g"))
    remote = compute_stats_spark(cfg)
    with_edges = [r for r in local["relations"] if local["num_edges"][r] > 0]
    assert remote["relations"] == with_edges
    assert remote["num_nodes"] == local["num_nodes"]
    assert remote["num_edges"] == {r: local["num_edges"][r] for r in with_edges}
    assert remote["total_edges"] == local["total_edges"]
    for key in ("rows_read", "duplicates_merged", "dropped", "time_range"):
        assert remote[key] == local[key], key
    assert local["duplicates_merged"] > 0 and sum(local["dropped"].values()) == 6
    for node_type in ("user", "tweet"):
        for name in ["all"] + with_edges:
            r, loc = remote["degrees"][node_type][name], local["degrees"][node_type][name]
            assert r.keys() == loc.keys()
            for k in loc:
                assert r[k] == pytest.approx(loc[k], abs=1e-9), (node_type, name, k)


def test_stats_cli_spark(spark, tmp_path, capsys):
    from coengage.cli import main

    frame, _ = make_log(seed=4)
    frame.to_parquet(tmp_path / "log.parquet", index=False)
    assert main(["graph", "stats", "--engine", "spark", "--logs", str(tmp_path / "log.parquet")]) == 0
    out = capsys.readouterr().out
    assert "users" in out and "fav" in out and "degrees" in out
