"""`coengage mine report`: plots, pages, figures that match a hand count, and refusals."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from coengage.cli import main
from coengage.errors import ArtifactError, InputError
from mining.pairs_io import pairs_table, write_pairs
from mining.report import label_agreement, pair_report

sys.path.insert(0, str(Path(__file__).parent))
from mining_fixtures import planted_graph  # noqa: E402


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    return planted_graph(tmp_path_factory.mktemp("rep") / "g", n_topics=3, tweets_per_topic=10, users_per_topic=8,
                         engagements_per_user=5)


def _write(path, graph, a, b, score, fingerprint=None):
    return write_pairs(path, pairs_table(graph.tweet_ids, a, b, score, "walk"),
                       manifest={"graph_fingerprint": fingerprint or graph.fingerprint, "method": "walk", "counts": {}})


def test_label_agreement_against_a_hand_count():
    labels = np.array(["x", "x", "y", "y", "y", None], dtype=object)
    got = label_agreement([0, 0, 2, 1], [1, 2, 3, 5], labels)
    # pairs with a known label on both sides: (0,1) same, (0,2) different, (2,3) same
    assert got["pairs_labelled"] == 3 and got["same_label_rate"] == pytest.approx(2 / 3)
    assert got["random_rate"] == pytest.approx((2 / 5) ** 2 + (3 / 5) ** 2)


def test_report_writes_plots_pages_and_figures(graph, tmp_path):
    a = np.array([0, 0, 1, 10, 20])
    b = np.array([1, 2, 2, 11, 5])  # (20, 5): topics 2 and 0 differ
    _write(tmp_path / "p.parquet", graph, a, b, np.array([5.0, 4.0, 3.0, 2.0, 1.0]))
    out = tmp_path / "rep"
    assert main(["mine", "report", str(tmp_path / "p.parquet"), "--graph", str(graph.path), "--out", str(out)]) == 0
    for name in ("score_hist.png", "pairs_per_tweet.png", "popularity.png", "report.md", "report.html", "summary.json"):
        assert (out / name).stat().st_size > 0, name
    for name in ("score_hist.png", "pairs_per_tweet.png", "popularity.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pairs"] == 5 and summary["tweets_paired"] == 7 and summary["max_pairs_per_tweet"] == 2
    assert summary["label_column"] == "topic"
    assert summary["label_agreement"]["same_label_rate"] == pytest.approx(4 / 5)
    assert summary["label_agreement"]["random_rate"] == pytest.approx(3 * (1 / 3) ** 2)
    texts = graph.texts().set_index("tweet_id")["text"]
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for page in (md, html):
        assert texts["t0000"] in page and texts["t0001"] in page  # the best pair shown with its texts


def test_report_refuses_pairs_from_another_graph_or_unknown_ids(graph, tmp_path):
    _write(tmp_path / "p.parquet", graph, [0], [1], [1.0], fingerprint="0000000000000000")
    with pytest.raises(ArtifactError, match="rebuild"):
        pair_report(tmp_path / "p.parquet", graph.path, tmp_path / "r")
    ids = np.array(list(graph.tweet_ids) + ["ghost"], dtype=object)
    write_pairs(tmp_path / "q.parquet", pairs_table(ids, [0], [len(ids) - 1], [1.0], "walk"),
                manifest={"graph_fingerprint": graph.fingerprint})
    with pytest.raises(InputError, match="'ghost'"):
        pair_report(tmp_path / "q.parquet", graph.path, tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_unknown_label_column_is_an_input_error(graph, tmp_path):
    _write(tmp_path / "p.parquet", graph, [0], [1], [1.0])
    with pytest.raises(InputError, match="subreddit"):
        pair_report(tmp_path / "p.parquet", graph.path, tmp_path / "r", label_col="subreddit")
