"""Pair files: every format round-trips ids, texts and scores; manifests guard the file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from coengage.errors import ArtifactError, InputError
from mining.pairs_io import infer_format, manifest_path, pairs_table, read_manifest, read_pairs, write_pairs

IDS = np.array(["007", "1e5", "12345678901234567890", "a\tb", "NaN"], dtype=object)
TEXTS = np.array(['tab\there "quoted"', "new\nline", "ünïcødé ✓", "plain", ""], dtype=object)


@pytest.mark.parametrize("name", ["p.parquet", "p.tsv", "p.tsv.gz", "p.jsonl", "p.jsonl.gz"])
def test_round_trip_keeps_string_ids_texts_and_scores(tmp_path, name):
    a, b = np.array([0, 1, 2, 3]), np.array([1, 2, 3, 4])
    score = np.array([0.1, 1 / 3, 2.0, 1e-12])
    table = pairs_table(IDS, a, b, score, "walk", TEXTS)
    manifest = write_pairs(tmp_path / name, table, manifest={"method": "walk", "counts": {"written": 4}})
    frame = read_pairs(tmp_path / name)
    assert frame["tweet_a"].tolist() == IDS[a].tolist()
    assert frame["tweet_b"].tolist() == IDS[b].tolist()
    assert frame["text_a"].tolist() == TEXTS[a].tolist()
    assert frame["text_b"].tolist() == TEXTS[b].tolist()
    np.testing.assert_array_equal(frame["score"].to_numpy(), score)
    assert frame["score"].dtype == np.float64
    assert set(frame["method"]) == {"walk"}
    m = read_manifest(tmp_path / name)
    assert m == json.loads(manifest_path(tmp_path / name).read_text())
    assert m["kind"] == "coengage.pairs" and m["schema_version"] == 1 and m["rows"] == 4
    assert m["format"] == infer_format(name)


def test_parquet_column_types(tmp_path):
    import pyarrow.parquet as pq

    write_pairs(tmp_path / "p.parquet", pairs_table(IDS, [0], [1], [0.5], "knn"))
    schema = pq.read_schema(tmp_path / "p.parquet")
    assert [(f.name, str(f.type)) for f in schema] == [("tweet_a", "string"), ("tweet_b", "string"),
                                                       ("score", "double"), ("method", "string")]


def test_explicit_format_wins_over_the_name(tmp_path):
    write_pairs(tmp_path / "pairs.out", pairs_table(IDS, [0], [1], [0.5], "knn"), fmt="jsonl")
    assert (tmp_path / "pairs.out").read_text().startswith("{")
    assert read_pairs(tmp_path / "pairs.out", fmt="jsonl")["tweet_a"].tolist() == ["007"]
    with pytest.raises(InputError, match="unknown pair file format"):
        infer_format("x", "csv")


def test_edited_file_fails_the_manifest_check(tmp_path):
    path = tmp_path / "p.tsv"
    write_pairs(path, pairs_table(IDS, [0], [1], [0.5], "walk"))
    with open(path, "a") as f:
        f.write("x\ty\t1.0\twalk\n")
    with pytest.raises(ArtifactError, match="changed after it was written"):
        read_manifest(path)
    assert read_manifest(path, check=False)["rows"] == 1


def _partitioned(tmp_path):
    """A directory of Parquet parts with a manifest shaped like the Spark engine's."""
    from coengage.artifacts import parts_fingerprint, write_json

    d = tmp_path / "parts"
    d.mkdir()
    pairs_table(IDS, [0], [1], [0.5], "coengage").to_pandas().to_parquet(d / "part-00000.parquet")
    pairs_table(IDS, [1], [2], [0.25], "coengage").to_pandas().to_parquet(d / "part-00001.parquet")
    names = ["part-00000.parquet", "part-00001.parquet"]
    write_json(manifest_path(d), {"kind": "coengage.pairs", "schema_version": 1, "format": "parquet",
                                  "layout": "partitioned", "parts": names, "rows": 2,
                                  "fingerprint": parts_fingerprint(d, names)})
    return d


def test_partitioned_directory_passes_the_check_and_reads(tmp_path):
    from lm.data import load_pairs, pairs_fingerprint

    d = _partitioned(tmp_path)
    manifest = read_manifest(d)
    assert manifest["rows"] == 2 and pairs_fingerprint(d) == manifest["fingerprint"]
    assert sorted(read_pairs(d)["score"]) == [0.25, 0.5]
    assert sorted(load_pairs(d)["tweet_b"]) == sorted([IDS[1], IDS[2]])


@pytest.mark.parametrize("change", ["edit", "remove", "add"])
def test_partitioned_directory_changed_after_writing_is_refused(tmp_path, change):
    d = _partitioned(tmp_path)
    if change == "edit":
        pairs_table(IDS, [0], [2], [0.9], "coengage").to_pandas().to_parquet(d / "part-00001.parquet")
    elif change == "remove":
        (d / "part-00001.parquet").unlink()
    else:
        pairs_table(IDS, [0], [2], [0.9], "coengage").to_pandas().to_parquet(d / "part-00002.parquet")
    with pytest.raises(ArtifactError, match="part|changed after it was written"):
        read_manifest(d)
    assert read_manifest(d, check=False)["rows"] == 2


def test_missing_columns_and_missing_files_are_clear_errors(tmp_path):
    path = tmp_path / "bad.tsv"
    pd.DataFrame({"tweet_a": ["1"], "score": [1.0]}).to_csv(path, sep="\t", index=False)
    with pytest.raises(InputError, match="missing pair file column.*tweet_b.*method"):
        read_pairs(path)
    with pytest.raises(ArtifactError, match="no such pair file"):
        read_pairs(tmp_path / "nope.parquet")
    with pytest.raises(ArtifactError, match="no manifest"):
        read_manifest(path)


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "p.parquet"
    write_pairs(path, pairs_table(IDS, [0], [1], [0.5], "walk"))
    before = path.read_bytes()
    with pytest.raises(ValueError, match="lacks columns"):
        write_pairs(path, pd.DataFrame({"tweet_a": ["x"]}))
    assert path.read_bytes() == before
    assert not list(tmp_path.glob("*.tmp-*"))
