"""graph.ingest: formats, gzip, headers, missing columns, undecodable bytes, globs."""

from __future__ import annotations

import gzip

import pandas as pd
import pyarrow as pa
import pytest

from coengage.errors import InputError
from graph import ingest
from tests.graph.conftest import write_frame

FORMATS = ["csv", "csv.gz", "tsv", "tsv.gz", "parquet", "jsonl", "jsonl.gz"]


@pytest.mark.parametrize("ext", FORMATS)
def test_every_format_reads_the_same_rows_in_chunks(tmp_path, small_log, ext):
    path = write_frame(small_log, tmp_path / f"log.{ext}")
    fmt = ingest.detect_format(path)
    assert fmt == ext.split(".")[0]
    assert set(ingest.read_header(path, fmt)) == set(small_log.columns)
    chunks = list(ingest.iter_chunks(path, ["tweet_id", "user_id"], chunk_rows=3, string_columns=["user_id"]))
    table = pa.concat_tables(chunks)
    assert table.column_names == ["tweet_id", "user_id"]
    assert [str(x) for x in table.column("user_id").to_pylist()] == small_log["user_id"].tolist()
    assert [str(x) for x in table.column("tweet_id").to_pylist()] == small_log["tweet_id"].tolist()


def test_jsonl_is_streamed_in_several_chunks(tmp_path):
    df = pd.DataFrame({"user_id": [f"u{i}" for i in range(5000)], "tweet_id": ["t"] * 5000})
    path = write_frame(df, tmp_path / "big.jsonl")
    chunks = list(ingest.iter_chunks(path, ["user_id"], chunk_rows=200))
    assert len(chunks) > 1
    assert sum(c.num_rows for c in chunks) == 5000
    assert pa.concat_tables(chunks).column("user_id").to_pylist() == df["user_id"].tolist()


def test_csv_ids_stay_strings(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("user_id,tweet_id\n007,0012\n8,13\n")
    t = pa.concat_tables(ingest.iter_chunks(path, ["user_id", "tweet_id"], string_columns=["user_id", "tweet_id"]))
    assert t.column("user_id").to_pylist() == ["007", "8"]
    assert t.column("tweet_id").to_pylist() == ["0012", "13"]


@pytest.mark.parametrize("name,fmt", [("a.csv", "csv"), ("a.TSV.gz", "tsv"), ("a.pq", "parquet"),
                                      ("a.ndjson.gz", "jsonl"), ("a.json", "jsonl"), ("a.tab", "tsv")])
def test_detect_format(name, fmt):
    assert ingest.detect_format(name) == fmt


def test_unknown_extension_is_an_error():
    with pytest.raises(InputError, match="cannot tell the format"):
        ingest.detect_format("log.xlsx")
    assert ingest.detect_format("log.xlsx", "csv") == "csv"


def test_missing_column_names_file_column_and_present_columns(tmp_path, small_log):
    path = write_frame(small_log, tmp_path / "log.csv")
    present = ingest.read_header(path, "csv")
    with pytest.raises(InputError) as e:
        ingest.require_columns(path, present, {"user": "uid", "tweet": "tweet_id"})
    msg = str(e.value)
    assert str(path) in msg and "'uid'" in msg and "user column" in msg
    assert "columns present: ['user_id', 'tweet_id', 'engagement', 'timestamp']" in msg
    assert "--user-col" in msg


@pytest.mark.parametrize("gz", [False, True])
def test_undecodable_bytes_reported_with_line(tmp_path, gz):
    data = b"user_id,tweet_id\nalice,t1\nbob,t2\ncar\xffol,t3\ndave,t4\n"
    path = tmp_path / ("bad.csv.gz" if gz else "bad.csv")
    path.write_bytes(gzip.compress(data) if gz else data)
    assert ingest.find_undecodable(path) == (4, 4)
    with pytest.raises(InputError) as e:
        list(ingest.iter_chunks(path, ["user_id", "tweet_id"], string_columns=["user_id", "tweet_id"]))
    assert str(path) in str(e.value) and "line 4" in str(e.value) and "undecodable" in str(e.value)


def test_undecodable_jsonl(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"user_id": "a"}\n{"user_id": "b\xfe"}\n')
    with pytest.raises(InputError, match="line 2"):
        list(ingest.iter_chunks(path, ["user_id"]))


def test_latin1_encoding_option(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("user_id,tweet_id\nJos\xe9,t1\n".encode("latin-1"))
    t = pa.concat_tables(ingest.iter_chunks(path, ["user_id"], encoding="latin-1", string_columns=["user_id"]))
    assert t.column("user_id").to_pylist() == ["José"]


def test_globs_and_missing_files(tmp_path, small_log):
    for i in range(3):
        write_frame(small_log, tmp_path / f"part-{i}.parquet")
    paths = ingest.expand_paths([str(tmp_path / "part-*.parquet"), str(tmp_path / "part-1.parquet")])
    assert [p.name for p in paths] == ["part-0.parquet", "part-1.parquet", "part-2.parquet"]
    with pytest.raises(InputError, match="matches no files"):
        ingest.expand_paths([str(tmp_path / "nope-*.csv")], "log")
    with pytest.raises(InputError, match="does not exist"):
        ingest.expand_paths([str(tmp_path / "nope.csv")], "log")


def test_bad_json_names_lines(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"user_id": "a"}\n{"user_id": \n')
    with pytest.raises(InputError, match="line"):
        list(ingest.iter_chunks(path, ["user_id"]))
