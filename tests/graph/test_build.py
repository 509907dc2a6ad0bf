"""graph build: formats, column mapping, bad input, id maps, CSR vs an independent reconstruction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from coengage.cli import main
from coengage.errors import ArtifactError, InputError
from graph.artifact import load
from graph.build import BuildConfig, build_graph, parse_types
from tests.graph.conftest import artifact_edges, reference_edges, write_frame

FORMATS = ["csv", "csv.gz", "tsv", "parquet", "jsonl", "jsonl.gz"]
KEY = ["user", "tweet", "type"]


def _build(tmp_path, log_paths, **kw):
    kw.setdefault("no_dgl", True)
    cfg = BuildConfig(log=[str(p) for p in log_paths], **kw)
    return build_graph(cfg, out=tmp_path / "g")


def _sorted(df):
    return df.sort_values(KEY).reset_index(drop=True)


@pytest.mark.parametrize("ext", FORMATS)
def test_csr_equals_independent_reconstruction(tmp_path, small_log, ext):
    path = write_frame(small_log, tmp_path / f"log.{ext}")
    g = _build(tmp_path, [path], chunk_rows=4)
    ref = _sorted(reference_edges(small_log))
    for direction in ("user_tweet", "tweet_user"):
        got = _sorted(artifact_edges(g, direction))
        pd.testing.assert_frame_equal(got[KEY + ["time", "count"]], ref[KEY + ["time", "count"]], check_dtype=False)
    assert g.manifest["num_nodes"] == {"user": 4, "tweet": 4}
    assert g.manifest["num_edges"] == {"fav": 4, "reply": 2, "retweet": 2}
    assert g.manifest["duplicates_merged"] == 2
    assert g.manifest["rows_read"] == 10
    assert g.relations == ["fav", "reply", "retweet"]  # discovered types, sorted by name


def test_csr_is_sorted_and_consistent(tmp_path, small_log):
    g = _build(tmp_path, [write_frame(small_log, tmp_path / "log.parquet")])
    ut, tu = g.csr("user_tweet"), g.csr("tweet_user")
    for csr in (ut, tu):
        assert csr.indptr.dtype == np.int64 and csr.indices.dtype == np.int32 and csr.etype.dtype == np.int8
        assert csr.time.dtype == np.int64 and csr.count.dtype == np.int32
        rows = np.repeat(np.arange(csr.n_rows), csr.degrees())
        key = (rows.astype(np.int64) * 1000 + csr.indices) * 10 + csr.etype
        assert np.all(np.diff(key) > 0)  # strictly increasing: sorted and no duplicate edges
    assert ut.n_edges == tu.n_edges == g.num_edges


def test_id_maps_round_trip(tmp_path, small_log):
    g = _build(tmp_path, [write_frame(small_log, tmp_path / "log.csv")])
    assert sorted(g.user_ids.tolist()) == sorted(small_log["user_id"].unique())
    assert sorted(g.tweet_ids.tolist()) == sorted(small_log["tweet_id"].unique())
    assert g.user_ids.tolist() == list(dict.fromkeys(small_log["user_id"]))  # first appearance order
    index = g.tweet_index()
    assert all(g.tweet_ids[index[t]] == t for t in small_log["tweet_id"])
    # every raw row is an edge of the graph under its ids
    edges = set(map(tuple, artifact_edges(g)[KEY].to_numpy()))
    assert all((u, t, e) in edges for u, t, e in small_log[["user_id", "tweet_id", "engagement"]].to_numpy())


def test_same_artifact_for_any_chunk_size_and_format(tmp_path, small_log):
    a = build_graph(BuildConfig(log=[str(write_frame(small_log, tmp_path / "a.csv"))], chunk_rows=1, no_dgl=True), tmp_path / "ga")
    b = build_graph(BuildConfig(log=[str(write_frame(small_log, tmp_path / "b.parquet"))], chunk_rows=1000, no_dgl=True), tmp_path / "gb")
    assert a.fingerprint == b.fingerprint


def test_column_mapping_flags_and_texts(tmp_path, small_log, small_texts):
    log = small_log.rename(columns={"user_id": "who", "tweet_id": "item", "engagement": "kind", "timestamp": "ts"})
    logp = write_frame(log, tmp_path / "log.tsv")
    texts = small_texts.rename(columns={"tweet_id": "pid"})
    tp = write_frame(texts, tmp_path / "texts.jsonl.gz")
    rc = main(["graph", "build", "--log", str(logp), "--texts", str(tp), "--user-col", "who", "--item-col", "item",
               "--type-col", "kind", "--time-col", "ts", "--text-id-col", "pid", "--text-cols", "title,text",
               "--out", str(tmp_path / "g"), "--no-dgl"])
    assert rc == 0
    g = load(tmp_path / "g")
    assert g.num_users == 4 and g.num_tweets == 4
    t = g.texts().set_index("tweet_id")
    assert t.loc["t1", "text"] == "Title one\nbody one"
    assert t.loc["t2", "text"] == "Title two"  # empty body: no trailing newline
    assert t.loc["t3", "topic"] == "a" and list(t.columns) == ["node", "text", "topic"]
    assert all(g.tweet_ids[t.loc[i, "node"]] == i for i in t.index)
    assert g.manifest["texts"]["not_in_graph"] == 1


def test_yaml_config_and_flags_override(tmp_path, small_log):
    log = small_log.rename(columns={"user_id": "uid"})
    logp = write_frame(log, tmp_path / "log.parquet")
    cfg = tmp_path / "build.yaml"
    cfg.write_text(f"log: [{logp}]\nuser-col: uid\ntypes: {{fav: 1.0, retweet: 2.5, reply: 3}}\nout: {tmp_path / 'ignored'}\n")
    assert main(["graph", "build", "--config", str(cfg), "--out", str(tmp_path / "g"), "--no-dgl"]) == 0
    g = load(tmp_path / "g")
    assert not (tmp_path / "ignored").exists()
    assert g.relations == ["fav", "retweet", "reply"]  # vocabulary order
    assert g.type_weights.tolist() == [1.0, 2.5, 3.0]
    assert g.manifest["config"]["user_col"] == "uid"


def test_unknown_config_key_is_listed(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("usr_col: x\n")
    with pytest.raises(InputError, match="unknown option 'usr_col'.*user_col"):
        BuildConfig.from_yaml(cfg)


def test_parse_types():
    assert parse_types("fav=1,retweet=2") == {"fav": 1.0, "retweet": 2.0}
    assert parse_types("fav, reply") == {"fav": 1.0, "reply": 1.0}
    assert parse_types(None) is None
    with pytest.raises(InputError, match="not a number"):
        parse_types("fav=x")


def test_unknown_types_error_keep_drop(tmp_path, small_log):
    p = write_frame(small_log, tmp_path / "log.csv")
    with pytest.raises(InputError) as e:
        _build(tmp_path, [p], types={"fav": 1, "retweet": 2})
    assert "'reply'" in str(e.value) and "known types: fav, retweet" in str(e.value)
    assert not (tmp_path / "g").exists()
    g = _build(tmp_path, [p], types={"fav": 1, "retweet": 2}, unknown_types="drop")
    assert g.manifest["dropped"]["unknown_type"] == int((small_log["engagement"] == "reply").sum())
    assert g.relations == ["fav", "retweet"]
    g = _build(tmp_path, [p], types={"fav": 1, "retweet": 2}, unknown_types="keep")
    assert g.relations == ["fav", "retweet", "reply"] and g.type_weights.tolist() == [1, 2, 1]


def _noisy_log(small_log):
    bad = pd.DataFrame([
        ("", "t1", "fav", "100"),
        ("  ", "t2", "fav", "100"),
        ("erin", "", "fav", "100"),
        ("erin", "t1", "fav", "yesterday"),
        ("erin", "t1", "fav", ""),
        ("erin", "t2", "fav", "2021-03-04T05:06:07Z"),  # ISO-8601: kept
        ("erin", "t3", "fav", "1600000000.7"),  # decimal seconds: kept, floored
    ], columns=small_log.columns)
    log = small_log.astype({"timestamp": str})
    return pd.concat([log.iloc[:3], bad, log.iloc[3:]], ignore_index=True)


@pytest.mark.parametrize("ext", ["csv", "jsonl"])
def test_bad_rows_are_counted_and_dropped(tmp_path, small_log, ext):
    p = write_frame(_noisy_log(small_log), tmp_path / f"log.{ext}")
    g = _build(tmp_path, [p])
    assert g.manifest["dropped"] == {"empty_user": 2, "empty_tweet": 1, "empty_type": 0, "bad_timestamp": 2, "unknown_type": 0}
    assert "" not in g.user_ids.tolist() and "  " not in g.user_ids.tolist()
    e = artifact_edges(g).set_index(KEY)
    assert e.loc[("erin", "t2", "fav"), "time"] == 1614834367
    assert e.loc[("erin", "t3", "fav"), "time"] == 1600000000


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_types_seen_only_in_dropped_rows_are_not_relations(tmp_path, small_log, ext):
    """Blank types and types whose every row is dropped (here: empty user) make no relation."""
    bad = pd.DataFrame([("erin", "t1", "", "100"), ("erin", "t2", "  ", "100"), ("", "t1", "boost", "100")],
                       columns=small_log.columns)
    log = pd.concat([small_log.astype({"timestamp": str}), bad], ignore_index=True)
    g = _build(tmp_path, [write_frame(log, tmp_path / f"log.{ext}")])
    assert g.manifest["dropped"]["empty_type"] == 2 and g.manifest["dropped"]["empty_user"] == 1
    assert sorted(g.manifest["num_edges"]) == sorted(small_log["engagement"].unique())
    assert all(n > 0 for n in g.manifest["num_edges"].values())


def test_strict_names_file_and_first_bad_row(tmp_path, small_log):
    p = write_frame(_noisy_log(small_log), tmp_path / "log.csv")
    with pytest.raises(InputError) as e:
        _build(tmp_path, [p], strict=True)
    assert str(p) in str(e.value) and "row 4 (line 5)" in str(e.value) and "empty user id" in str(e.value)
    assert not (tmp_path / "g").exists()


def test_cli_missing_user_column_exits_nonzero_and_writes_nothing(tmp_path, small_log, capsys):
    p = write_frame(small_log.drop(columns=["user_id"]), tmp_path / "log.csv.gz")
    out = tmp_path / "g"
    rc = main(["graph", "build", "--log", str(p), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "'user_id'" in err and str(p) in err and "columns present" in err and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob("g.tmp-*"))


def test_empty_result_is_a_clear_error(tmp_path, small_log):
    p = write_frame(small_log.assign(user_id=""), tmp_path / "log.csv")
    with pytest.raises(InputError, match="no edges.*empty_user=10"):
        _build(tmp_path, [p])
    header_only = tmp_path / "empty.csv"
    header_only.write_text("user_id,tweet_id,engagement,timestamp\n")
    with pytest.raises(InputError, match="no data rows"):
        _build(tmp_path, [header_only])
    assert not (tmp_path / "g").exists()


def test_undecodable_log_names_file_and_line(tmp_path, capsys):
    p = tmp_path / "log.csv"
    p.write_bytes(b"user_id,tweet_id,engagement,timestamp\na,t1,fav,1\nb\xff,t1,fav,2\n")
    rc = main(["graph", "build", "--log", str(p), "--out", str(tmp_path / "g")])
    err = capsys.readouterr().err
    assert rc == 2 and str(p) in err and "line 3" in err
    assert not (tmp_path / "g").exists()


def test_out_dir_policy(tmp_path, small_log):
    p = write_frame(small_log, tmp_path / "log.csv")
    other = tmp_path / "g"
    other.mkdir()
    (other / "precious.txt").write_text("keep me")
    with pytest.raises(ArtifactError, match="--overwrite"):
        _build(tmp_path, [p])
    assert (other / "precious.txt").exists()
    _build(tmp_path, [p], overwrite=True)
    assert not (other / "precious.txt").exists()
    first = load(other).manifest["created"]
    g = _build(tmp_path, [p], types={"fav": 1, "retweet": 1, "reply": 1})  # an artifact is replaced
    assert g.relations == ["fav", "retweet", "reply"] and first


def test_out_may_never_be_or_hold_an_input(tmp_path, small_log):
    logs = tmp_path / "logs"
    logs.mkdir()
    p = write_frame(small_log, logs / "log.csv")
    for out in (logs, tmp_path, p):  # --overwrite would have replaced the log's directory (or the log)
        with pytest.raises(ArtifactError, match="would replace the input"):
            build_graph(BuildConfig(log=[str(logs / "*.csv")], overwrite=True, no_dgl=True), out=out)
    assert p.is_file() and (tmp_path / "logs").is_dir()


def test_multiple_files_glob_and_integer_ids(tmp_path):
    a = pd.DataFrame({"user_id": [1, 2, 3], "tweet_id": [10, 20, 10], "engagement": ["fav"] * 3, "timestamp": [1, 2, 3]})
    b = pd.DataFrame({"user_id": [3, 4], "tweet_id": [30, 10], "engagement": ["fav", "fav"], "timestamp": [4, 5]})
    write_frame(a, tmp_path / "part-0.parquet")
    write_frame(b, tmp_path / "part-1.parquet")
    g = build_graph(BuildConfig(log=[str(tmp_path / "part-*.parquet")], no_dgl=True), tmp_path / "g")
    assert g.user_ids.tolist() == ["1", "2", "3", "4"]
    assert g.tweet_ids.tolist() == ["10", "20", "30"]
    assert g.num_edges == 5
    assert [i["role"] for i in g.manifest["inputs"]] == ["log", "log"]
    assert all(len(i["fingerprint"]) == 16 for i in g.manifest["inputs"])


def test_dgl_graph_matches_csr(tmp_path, small_log):
    p = write_frame(small_log, tmp_path / "log.csv")
    g = _build(tmp_path, [p], no_dgl=False, types={"fav": 1.0, "reply": 3.0, "retweet": 2.0})
    from graph.dglgraph import load_dgl

    dg = load_dgl(g.path)
    assert set(dg.ntypes) == {"user", "tweet"}
    assert dg.num_nodes("user") == g.num_users and dg.num_nodes("tweet") == g.num_tweets
    ref = artifact_edges(g)
    for r, w in zip(g.relations, g.type_weights):
        src, dst = dg.edges(etype=r)
        got = pd.DataFrame({"user": g.user_ids[src.numpy()], "tweet": g.tweet_ids[dst.numpy()],
                            "time": dg.edges[r].data["time"].numpy()}).sort_values(["user", "tweet"]).reset_index(drop=True)
        want = ref[ref["type"] == r][["user", "tweet", "time"]].sort_values(["user", "tweet"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want, check_dtype=False)
        assert np.all(dg.edges[r].data["weight"].numpy() == w)
        rs, rd = dg.edges(etype=f"rev_{r}")
        assert sorted(zip(rd.tolist(), rs.tolist())) == sorted(zip(src.tolist(), dst.tolist()))
    # built with --no-dgl: load_dgl rebuilds the same graph from the CSR
    g2 = build_graph(BuildConfig(log=[str(p)], types={"fav": 1.0, "reply": 3.0, "retweet": 2.0}, no_dgl=True), tmp_path / "g2")
    assert not (g2.path / "graph.dgl").exists()
    dg2 = load_dgl(g2.path)
    for r in g.relations:
        assert dg2.edges(etype=r)[0].tolist() == dg.edges(etype=r)[0].tolist()


def test_time_and_type_columns_can_be_absent(tmp_path, small_log):
    p = write_frame(small_log[["user_id", "tweet_id"]], tmp_path / "log.csv")
    g = _build(tmp_path, [p], type_col="none", time_col="none")
    assert g.relations == ["engaged"]
    assert g.num_edges == len(small_log[["user_id", "tweet_id"]].drop_duplicates())


REDDIT = Path(__file__).resolve().parents[3] / "shared" / "data" / "reddit_college"


@pytest.mark.slow
def test_reddit_college_counts_match_pandas(tmp_path):
    log_path, posts_path = REDDIT / "engagements.csv.gz", REDDIT / "posts.jsonl.gz"
    if not log_path.exists():
        pytest.fail(f"the reddit_college data is missing at {REDDIT}")
    rc = main(["graph", "build", "--log", str(log_path), "--texts", str(posts_path), "--user-col", "user",
               "--item-col", "post_id", "--type-col", "engagement", "--time-col", "timestamp",
               "--text-cols", "title,text", "--out", str(tmp_path / "g")])
    assert rc == 0
    g = load(tmp_path / "g")
    raw = pd.read_csv(log_path, dtype={"user": str, "post_id": str, "engagement": str}, keep_default_na=False)
    empty = raw["user"].str.strip() == ""
    kept = raw[~empty]
    m = g.manifest
    assert m["rows_read"] == len(raw)
    assert m["dropped"]["empty_user"] == int(empty.sum())
    assert sum(m["dropped"].values()) == int(empty.sum())
    assert m["num_nodes"] == {"user": kept["user"].nunique(), "tweet": kept["post_id"].nunique()}
    ref = kept.groupby(["user", "post_id", "engagement"]).agg(time=("timestamp", "max"), count=("timestamp", "size")).reset_index()
    assert m["num_edges"] == ref["engagement"].value_counts().to_dict()
    assert m["duplicates_merged"] == len(kept) - len(ref)
    got = artifact_edges(g).rename(columns={"tweet": "post_id", "type": "engagement"})
    merged = ref.merge(got, on=["user", "post_id", "engagement"], how="outer", suffixes=("_ref", "_got"), indicator=True)
    assert (merged["_merge"] == "both").all()
    assert (merged["time_ref"] == merged["time_got"]).all() and (merged["count_ref"] == merged["count_got"]).all()
    posts = pd.read_json(posts_path, lines=True, dtype={"post_id": str})
    texts = g.texts()
    assert len(texts) == posts["post_id"].isin(set(g.tweet_ids)).sum()
    assert set(texts.columns) >= {"node", "tweet_id", "text", "subreddit"}
    one = posts.set_index("post_id").loc[texts["tweet_id"].iloc[0]]
    assert texts["text"].iloc[0].startswith(one["title"])
    from graph.dglgraph import load_dgl

    dg = load_dgl(g.path)
    assert {r: dg.num_edges(r) for r in g.relations} == m["num_edges"]


def test_dgl_file_is_lean_and_load_restores_the_full_graph(tmp_path, small_log):
    """graph.dgl stores forward relations only (int32, COO, time/count); load_dgl adds reverse + weight."""
    import dgl

    from graph.dglgraph import load_dgl
    from graph.writer import make_dgl_graph

    p = write_frame(small_log, tmp_path / "log.csv")
    g = _build(tmp_path, [p], no_dgl=False, types={"fav": 1.0, "reply": 3.0, "retweet": 2.0})
    saved = dgl.load_graphs(str(g.path / "graph.dgl"))[0][0]
    assert sorted(saved.etypes) == sorted(g.relations)  # no rev_* in the file
    assert str(saved.idtype) == "torch.int32"
    for r in g.relations:
        assert set(saved.edges[r].data) == {"time", "count"}
    full = load_dgl(g.path)
    ref = make_dgl_graph(g.csr("user_tweet"), g.relations, dict(zip(g.relations, g.type_weights.tolist())),
                         g.num_users, g.num_tweets)
    assert sorted(full.canonical_etypes) == sorted(ref.canonical_etypes)
    assert str(full.idtype) == "torch.int64"
    for et in ref.canonical_etypes:
        a, b = full.edges(etype=et), ref.edges(etype=et)
        assert a[0].tolist() == b[0].tolist() and a[1].tolist() == b[1].tolist()
        for k in ("time", "count", "weight"):
            assert full.edges[et].data[k].tolist() == ref.edges[et].data[k].tolist()


def _repetitive_log(n=6000, seed=0):
    """Few distinct ids repeated often (so Parquet keeps them dictionary-encoded), with
    null, empty and blank ids, several types and duplicates."""
    rng = np.random.default_rng(seed)
    users = np.array([f"u{i:03d}" for i in rng.integers(0, 150, n)], dtype=object)
    tweets = np.array([f"t{i}" for i in rng.zipf(1.5, n) % 400], dtype=object)
    users[rng.random(n) < 0.02] = None
    users[rng.random(n) < 0.02] = ""
    tweets[rng.random(n) < 0.02] = "  "
    types = np.array(["fav", "retweet", "reply"], dtype=object)[rng.integers(0, 3, n)]
    return pd.DataFrame({"user_id": users, "tweet_id": tweets, "engagement": types,
                         "timestamp": rng.integers(1_000, 2_000, n)})


@pytest.mark.parametrize("chunk_rows", [700, 5000])
def test_dictionary_reads_build_the_same_artifact_as_plain_reads(tmp_path, monkeypatch, chunk_rows):
    """Parquet id columns read as dictionaries (only used entries hashed) = read as strings."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import graph.build as build
    from graph.ingest import parquet_dictionary_columns

    df = _repetitive_log()
    path = tmp_path / "log.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=2500)  # 3 row groups
    assert parquet_dictionary_columns(path, ["user_id", "tweet_id", "engagement", "timestamp"]) == \
        ["user_id", "tweet_id", "engagement"]  # the fast path is really taken
    fast = build_graph(BuildConfig(log=[str(path)], chunk_rows=chunk_rows, no_dgl=True), tmp_path / "fast")
    monkeypatch.setattr(build, "DICTIONARY_READS", False)
    plain = build_graph(BuildConfig(log=[str(path)], chunk_rows=chunk_rows, no_dgl=True), tmp_path / "plain")
    assert fast.fingerprint == plain.fingerprint
    assert fast.manifest["dropped"] == plain.manifest["dropped"] and fast.manifest["dropped"]["empty_user"] > 0
    assert fast.manifest["duplicates_merged"] == plain.manifest["duplicates_merged"]
    assert fast.user_ids.tolist() == plain.user_ids.tolist() and fast.tweet_ids.tolist() == plain.tweet_ids.tolist()
    for direction in ("user_tweet", "tweet_user"):
        a, b = fast.csr(direction), plain.csr(direction)
        for f in ("indptr", "indices", "etype", "time", "count"):
            np.testing.assert_array_equal(np.asarray(getattr(a, f)), np.asarray(getattr(b, f)))
    kept = df[df["user_id"].fillna("").str.strip().ne("") & df["tweet_id"].str.strip().ne("")]
    assert fast.user_ids.tolist() == list(dict.fromkeys(kept["user_id"]))  # first appearance among kept rows
    assert fast.tweet_ids.tolist() == list(dict.fromkeys(kept["tweet_id"]))


def test_high_cardinality_parquet_ids_are_read_as_strings(tmp_path):
    """Ids that overflow the dictionary page are not worth reading as dictionaries."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from graph.ingest import parquet_dictionary_columns

    n = 20000
    t = pa.table({"user_id": [f"user-{i:08d}" for i in range(n)], "tweet_id": ["t1"] * n})
    path = tmp_path / "log.parquet"
    pq.write_table(t, path, dictionary_pagesize_limit=4096)
    assert parquet_dictionary_columns(path, ["user_id", "tweet_id"]) == ["tweet_id"]


def test_a_header_with_another_separator_is_explained(tmp_path):
    p = tmp_path / "log.csv"
    p.write_text("user_id;tweet_id;engagement;timestamp\nu1;t1;fav;1\n")
    with pytest.raises(InputError, match="header looks ';'-separated, but the file was read as ','-separated"):
        _build(tmp_path, [p])
    t = tmp_path / "tabs.csv"
    t.write_text("user_id\ttweet_id\tengagement\ttimestamp\nu1\tt1\tfav\t1\n")
    with pytest.raises(InputError, match="looks tab-separated"):
        _build(tmp_path, [t])
    assert _build(tmp_path, [t], format="tsv").num_edges == 1  # what the hint points to
    p.write_text("user,tweet_id,engagement,timestamp\nu1,t1,fav,1\n")  # several columns: no separator hint
    with pytest.raises(InputError, match="missing required column 'user_id'") as e:
        _build(tmp_path, [p])
    assert "separated" not in str(e.value)


@pytest.mark.parametrize("unit,div", [("s", 1), ("ms", 10 ** 3), ("us", 10 ** 6), ("ns", 10 ** 9)])
def test_parse_times_converts_numeric_epoch_units_and_floors(unit, div):
    import pyarrow as pa

    from graph.build import parse_times

    secs = np.array([1_700_000_000, -5, 0, 1_699_999_999], np.int64)
    frac = np.array([div - 1, 1, 0, div // 2], np.int64) % div  # sub-second parts: floored away
    raw = secs * div + frac
    for arr in (pa.array(raw), pa.array(raw.astype(str)), pa.array(list(raw.astype(str)) + [None]),
                pa.array(list(raw.astype(str)) + ["2023-11-14T22:13:20Z"])):
        got, ok = parse_times(arr, unit)
        assert got[:4].tolist() == secs.tolist(), (unit, arr.type)
        assert ok[:4].all()
    got, ok = parse_times(pa.array(raw.astype(np.float64)), unit)  # floats: as exact as float64 allows
    if div <= 10 ** 6:
        assert got.tolist() == secs.tolist()
    assert parse_times(pa.array(["2023-11-14T22:13:20Z", "bad"]), unit)[0][0] == 1_700_000_000  # ISO: its own unit


def test_millisecond_logs_warn_and_build_with_time_unit(tmp_path, caplog):
    import logging

    seconds = np.array([1_700_000_000, 1_700_000_900, 1_700_003_000])
    frame = pd.DataFrame({"user_id": ["a", "b", "c"], "tweet_id": ["t1", "t1", "t2"], "engagement": "fav",
                          "timestamp": seconds * 1000 + np.array([999, 0, 5])})
    p = write_frame(frame, tmp_path / "log.parquet")
    caplog.set_level(logging.WARNING, logger="graph.build")
    g = _build(tmp_path, [p])
    assert "look like milliseconds; pass --time-unit ms" in caplog.text and g.manifest["time_range"][1] > 10 ** 12
    with pytest.raises(InputError, match="--time-unit ms"):
        _build(tmp_path, [p], strict=True)
    caplog.clear()
    g = _build(tmp_path, [p], time_unit="ms")
    assert g.manifest["time_range"] == [1_700_000_000, 1_700_003_000] and "look like" not in caplog.text
    assert sorted(np.asarray(g.csr("user_tweet").time).tolist()) == seconds.tolist()
    with pytest.raises(InputError, match="time_unit must be one of s, ms, us, ns"):
        _build(tmp_path, [p], time_unit="minutes")


def test_ids_of_an_unusable_type_name_the_file_and_column(tmp_path):
    nested = tmp_path / "nested.jsonl"
    nested.write_text('{"user_id": {"id": 1}, "tweet_id": "t1", "engagement": "fav", "timestamp": 1}\n')
    with pytest.raises(InputError, match=r"nested\.jsonl: column 'user_id': ids of type struct"):
        _build(tmp_path, [nested])
    floats = tmp_path / "floats.jsonl"
    floats.write_text('{"user_id": "a", "tweet_id": 2.5, "engagement": "fav", "timestamp": 1}\n')
    with pytest.raises(InputError, match=r"floats\.jsonl: column 'tweet_id': ids are floating-point"):
        _build(tmp_path, [floats])
    types = tmp_path / "types.jsonl"
    types.write_text('{"user_id": "a", "tweet_id": "t", "engagement": 1.5, "timestamp": 1}\n')
    with pytest.raises(InputError, match=r"types\.jsonl: column 'engagement'"):
        _build(tmp_path, [types])
    assert not (tmp_path / "g").exists()


def test_repeated_text_ids_are_counted_warned_and_fatal_with_strict(tmp_path, caplog):
    import logging

    log = write_frame(pd.DataFrame({"user_id": ["a", "b"], "tweet_id": ["t1", "t2"], "engagement": "fav", "timestamp": [1, 2]}),
                      tmp_path / "log.csv")
    texts = write_frame(pd.DataFrame({"tweet_id": ["t1", "t1", "t2"], "text": ["first", "second", "two"]}), tmp_path / "texts.csv")
    caplog.set_level(logging.WARNING, logger="graph.build")
    g = _build(tmp_path, [log], texts=[str(texts)])
    assert "1 texts row(s) in" in caplog.text and "first: 't1'" in caplog.text
    assert g.manifest["texts"]["duplicate_ids"] == 1 and g.texts()["text"].tolist() == ["first", "two"]
    with pytest.raises(InputError, match="repeat a tweet id.*--strict"):
        build_graph(BuildConfig(log=[str(log)], texts=[str(texts)], strict=True, no_dgl=True), out=tmp_path / "g2")
    assert not (tmp_path / "g2").exists()
