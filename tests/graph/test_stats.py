"""graph stats: counts and degree summaries against a hand-built graph; the PNG and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from coengage.cli import main
from graph.stats import compute_stats, degree_summary, node_degrees
from graph.writer import write_graph


def _graph(tmp_path):
    # users 0..2, tweets 0..3; user 0 faves tweets 0,1,2 and retweets 0; user 1 faves 0; user 2 retweets 3
    return write_graph(tmp_path / "g", user_ids=["a", "b", "c"], tweet_ids=["w", "x", "y", "z"],
                       users=[0, 0, 0, 0, 1, 2, 1], tweets=[0, 1, 2, 0, 0, 3, 0], etypes=[0, 0, 0, 1, 0, 1, 0],
                       times=[1, 2, 3, 4, 5, 6, 7], relations=["fav", "retweet"], dropped={"empty_user": 3},
                       write_dgl_binary=False)


def test_degrees_per_node_type_and_relation(tmp_path):
    g = _graph(tmp_path)
    users = node_degrees(g, "user")
    assert users["all"].tolist() == [4, 1, 1]
    assert users["fav"].tolist() == [3, 1, 0] and users["retweet"].tolist() == [1, 0, 1]
    tweets = node_degrees(g, "tweet")
    assert tweets["all"].tolist() == [3, 1, 1, 1] and tweets["retweet"].tolist() == [1, 0, 0, 1]


def test_compute_stats_counts(tmp_path):
    s = compute_stats(_graph(tmp_path))
    assert s["num_nodes"] == {"user": 3, "tweet": 4}
    assert s["num_edges"] == {"fav": 4, "retweet": 2} and s["total_edges"] == 6
    assert s["duplicates_merged"] == 1 and s["dropped"] == {"empty_user": 3}
    u = s["degrees"]["user"]["all"]
    assert (u["min"], u["max"], u["median"], u["zero_degree"]) == (1, 4, 1.0, 0)
    assert abs(u["mean"] - 2.0) < 1e-12
    assert s["degrees"]["user"]["fav"]["zero_degree"] == 1


def test_degree_summary_empty_and_values():
    assert degree_summary(np.array([], dtype=np.int64))["nodes"] == 0
    s = degree_summary(np.arange(101))
    assert s["median"] == 50 and s["p90"] == 90 and s["p99"] == 99 and s["max"] == 100 and s["zero_degree"] == 1


def test_cli_prints_counts_and_writes_png(tmp_path, capsys):
    g = _graph(tmp_path)
    png = tmp_path / "deg.png"
    assert main(["graph", "stats", str(g.path), "--plot", str(png), "--json", str(tmp_path / "s.json")]) == 0
    out = capsys.readouterr().out
    assert "3 users, 4 tweets" in out and "empty_user 3" in out and "retweet" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert json.loads((tmp_path / "s.json").read_text())["total_edges"] == 6


def test_cli_stats_on_missing_dir_is_a_clean_error(tmp_path, capsys):
    assert main(["graph", "stats", str(tmp_path / "nope"), "--no-plot"]) == 2
    assert "no such directory" in capsys.readouterr().err


def test_cli_output_into_a_closed_pipe_stops_quietly(tmp_path):
    """`coengage graph stats G | head`: the reader has left before the first line; the command
    ends with SIGPIPE's status (128 + 13) and no traceback, not a BrokenPipeError."""
    g = _graph(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "coengage", "graph", "stats", str(g.path), "--no-plot"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # before the child's interpreter is up: its first write finds no reader
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141, err.decode()
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err.decode()
