"""Tests for the synthetic engagement-log generator (graph/synth.py, `coengage synth`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from coengage.errors import ArtifactError, InputError
from graph import synth
from graph.synth import SynthConfig, generate

SMALL = dict(users=400, tweets=1000, engagements=20_000, block_rows=4096)


def read(directory: Path, name: str, manifest: dict) -> pd.DataFrame:
    path = directory / manifest["files"][name]
    fmt = manifest["format"]
    if fmt == "parquet":
        return pd.read_parquet(path)
    if fmt in ("csv", "tsv"):
        return pd.read_csv(path, sep="," if fmt == "csv" else "\t", dtype=str, keep_default_na=False)
    return pd.read_json(path, lines=True, dtype=False, convert_dates=False)


@pytest.fixture(scope="module")
def default_data(tmp_path_factory):
    """The default demo data set (2000 users, 5000 tweets, 100k engagements), seed 0."""
    out = tmp_path_factory.mktemp("synth") / "default"
    manifest = generate(out, SynthConfig(), progress=False)
    e, t, u = (read(out, name, manifest) for name in ("engagements", "tweets", "users"))
    return out, manifest, e, t, u


def indexed(e, t, u):
    """Engagement rows as (user index, tweet index) into the users/tweets tables."""
    uix = pd.Series(np.arange(len(u)), index=u.user_id)
    tix = pd.Series(np.arange(len(t)), index=t.tweet_id)
    return uix[e.user_id].to_numpy(), tix[e.tweet_id].to_numpy()


# ----------------------------------------------------------------------------- layout


def test_default_sizes_and_manifest(default_data):
    out, m, e, t, u = default_data
    assert m["kind"] == "coengage.synth" and m["schema_version"] == 1
    assert sorted(p.name for p in out.iterdir()) == sorted(list(m["files"].values()) + ["manifest.json"])
    c = m["counts"]
    assert (c["users"], c["tweets"], c["engagements"], c["topics"]) == (2000, 5000, 100_000, 8)
    assert len(u) == 2000 and len(t) == 5000
    assert len(e) == c["rows"] == c["engagements"] + c["duplicates"] + c["malformed_total"]
    assert c["malformed_total"] == 0
    assert sum(c["by_engagement"].values()) == c["engagements"]
    assert c["by_engagement"]["author"] == c["author_rows"] == 5000
    assert c["bots"] == int(u.is_bot.sum()) == 10
    for name in ("engagements", "tweets", "users"):
        assert list(read(out, name, m).columns) == m["columns"][name]
    assert json.loads((out / "manifest.json").read_text()) == m


def test_column_types_and_ids(default_data):
    _, m, e, t, u = default_data
    schema = pq.read_schema(default_data[0] / m["files"]["engagements"])
    assert [str(schema.field(c).type) for c in m["columns"]["engagements"]] == ["string", "string", "string", "int64"]
    assert set(e.engagement) == {"fav", "retweet", "reply", "quote", "author"}
    assert u.user_id.is_unique and t.tweet_id.is_unique
    assert u.user_id.str.fullmatch(r"u\d+").all() and t.tweet_id.str.fullmatch(r"t\d+").all()
    # Not contiguous ints in file order: the graph builder's id map has real work to do.
    nums = u.user_id.str[1:].astype(np.int64).to_numpy()
    assert not (np.diff(nums) > 0).all()
    assert nums.max() - nums.min() > 10 * len(u)
    assert set(e.user_id) <= set(u.user_id) and set(e.tweet_id) <= set(t.tweet_id)
    # Each row of users.interests is a distribution over K topics; top_topic is its argmax.
    inter = np.array([json.loads(x) for x in u.interests])
    assert inter.shape == (2000, 8)
    np.testing.assert_allclose(inter.sum(axis=1), 1.0, atol=1e-4)
    human = ~u.is_bot.to_numpy()
    assert (inter[human].argmax(axis=1) == u.top_topic.to_numpy()[human]).all()
    assert (u.top_topic[u.is_bot] == -1).all()
    np.testing.assert_allclose(u.activity.sum(), 1.0, rtol=1e-9)
    assert t.topic.between(0, 7).all() and t.topic.nunique() == 8
    hashtags = {k: set(x["hashtags"]) for k, x in enumerate(m["topics"])}
    assert all(h in hashtags[k] for h, k in zip(t.hashtag, t.topic))


def test_authors_and_timestamps(default_data):
    _, m, e, t, u = default_data
    cfg = m["config"]
    end = cfg["start"] + round(cfg["span_days"] * 86400)
    assert t.created.between(cfg["start"], end - 1).all()
    authors = e[e.engagement == "author"].drop_duplicates()
    assert len(authors) == len(t) and authors.tweet_id.is_unique
    merged = authors.merge(t, on="tweet_id")
    assert (merged.user_id == merged.author_id).all()
    assert (merged.timestamp == merged.created).all()
    assert not u.set_index("user_id").is_bot[t.author_id].any()
    # Every other engagement comes after the tweet's creation, inside the span.
    other = e[e.engagement != "author"].merge(t[["tweet_id", "created"]], on="tweet_id")
    assert (other.timestamp >= other.created).all() and (other.timestamp < end).all()
    assert (other.timestamp > other.created).mean() > 0.9


def test_tweet_texts_look_like_tweets(default_data):
    _, m, _, t, _ = default_data
    ntok = t.text.str.split().str.len()
    assert ntok.min() >= 8 and ntok.max() <= 40 and 15 <= ntok.mean() <= 30
    assert 0.6 < t.apply(lambda r: r.hashtag in r.text, axis=1).mean() < 0.95
    assert 0.1 < t.text.str.contains("@u").mean() < 0.4
    assert 0.05 < t.text.str.contains("https://t.co/").mean() < 0.3
    assert t.text.str.contains(" the ").mean() > 0.3  # shared stop words
    assert not t.text.str.contains('["\t\n]').any()
    # Topic vocabularies: a tweet's words overlap far more with its own topic's tweets.
    vocab = {k: set(" ".join(g.text).split()) for k, g in t.groupby("topic")}
    first = t.groupby("topic").head(1)
    for text, k in zip(first.text, first.topic):
        words = {w for w in text.split() if w.isalpha() and w.islower() and len(w) > 4}
        own = len(words & vocab[k]) / max(1, len(words))
        other = np.mean([len(words & vocab[j]) / max(1, len(words)) for j in vocab if j != k])
        assert own > other


# ----------------------------------------------------------------------------- planted structure


def test_humans_engage_with_their_topics_bots_do_not(default_data):
    _, m, e, t, u = default_data
    e = e[e.engagement != "author"]
    ui, ti = indexed(e, t, u)
    topic = t.topic.to_numpy()[ti]
    bot = u.is_bot.to_numpy()[ui]
    top = u.top_topic.to_numpy()[ui]
    K = m["config"]["topics"]
    on_top = (topic[~bot] == top[~bot]).mean()
    assert on_top > 0.85 and on_top > 5 / K
    # Bots engage at random: their engagements follow the tweets' topic shares.
    bot_share = np.bincount(topic[bot], minlength=K) / bot.sum()
    tweet_share = np.bincount(t.topic, minlength=K) / len(t)
    assert np.abs(bot_share - tweet_share).max() < 0.05
    # Hyperactive: a bot has far more engagements than the median user.
    per_user = np.bincount(ui, minlength=len(u))
    assert np.median(per_user[u.is_bot.to_numpy()]) > 5 * np.median(per_user[~u.is_bot.to_numpy()])


def test_co_engagement_neighbours_share_topic(default_data):
    """What the downstream stages must recover: tweets engaged by the same people share a topic."""
    import scipy.sparse as sp

    _, _, e, t, u = default_data
    ui, ti = indexed(e, t, u)
    A = sp.csr_matrix((np.ones(len(ui)), (ui, ti)), shape=(len(u), len(t)))
    A.data[:] = 1.0
    C = (A.T @ A).tocsr()
    C.setdiag(0)
    C.eliminate_zeros()
    topic = t.topic.to_numpy()
    agree = []
    for i in range(len(t)):
        a, b = C.indptr[i], C.indptr[i + 1]
        if b > a:
            nbr = C.indices[a:b][np.argsort(-C.data[a:b], kind="stable")[:10]]
            agree.append((topic[nbr] == topic[i]).mean())
    assert len(agree) > 0.95 * len(t)
    assert np.mean(agree) >= 0.93


def test_power_law_skew(default_data):
    _, _, e, t, u = default_data
    ui, ti = indexed(e, t, u)
    human = ~u.is_bot.to_numpy()
    per_user = np.sort(np.bincount(ui, minlength=len(u))[human])[::-1]
    assert per_user[: len(per_user) // 100].sum() / per_user.sum() > 0.08  # top 1% of users
    per_tweet = np.sort(np.bincount(ti, minlength=len(t)))[::-1]
    assert per_tweet[: len(t) // 100].sum() / per_tweet.sum() > 0.08  # top 1% of tweets


def test_engagement_type_rates(default_data):
    _, m, e, _, _ = default_data
    by = m["counts"]["by_engagement"]
    n = sum(v for k, v in by.items() if k != "author")
    share = {k: by[k] / n for k in ("fav", "retweet", "reply", "quote")}
    assert share["fav"] > share["retweet"] > share["reply"] > share["quote"] > 0.03
    assert abs(share["fav"] - 0.6) < 0.05
    counted = e.drop_duplicates().engagement.value_counts()
    assert counted["fav"] <= by["fav"] and counted["author"] == by["author"]


def test_duplicates_at_requested_rate(default_data):
    _, m, e, _, _ = default_data
    dup = m["counts"]["duplicates"]
    n = m["counts"]["engagements"]
    assert abs(dup - 0.01 * n) < 4 * np.sqrt(0.01 * n)  # binomial, 4 sigma
    found = int(e.duplicated().sum())
    assert dup <= found <= dup + 0.002 * n  # planted ones plus rare coincidences


def test_power_law_rank_matches_its_mass():
    rng = np.random.default_rng(0)
    for n, s in [(50, 1.0), (50, 0.8), (7, 0.0), (1000, 0.667)]:
        draws = synth.power_law_rank(rng.random(200_000), n, s)
        assert draws.min() >= 0 and draws.max() < n
        freq = np.bincount(draws, minlength=n) / len(draws)
        mass = synth.power_law_mass(n, s)
        np.testing.assert_allclose(mass.sum(), 1.0)
        assert np.abs(freq - mass).max() < 5 * np.sqrt(mass.max() / len(draws))


# ----------------------------------------------------------------------------- determinism, formats


def _bytes(directory: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.mark.parametrize("fmt,gz", [("parquet", False), ("jsonl", True)])
def test_same_seed_same_bytes_other_seed_differs(tmp_path, fmt, gz):
    cfg = dict(SMALL, malformed_rate=0.01, format=fmt, gzip=gz)
    generate(tmp_path / "a", SynthConfig(seed=7, **cfg), progress=False)
    generate(tmp_path / "b", SynthConfig(seed=7, **cfg), progress=False)
    generate(tmp_path / "c", SynthConfig(seed=8, **cfg), progress=False)
    a, b, c = _bytes(tmp_path / "a"), _bytes(tmp_path / "b"), _bytes(tmp_path / "c")
    assert a == b
    for name in a:
        assert a[name] != c[name], name


def test_content_does_not_depend_on_chunk_rows(tmp_path):
    for chunk in (777, 1_000_000):
        generate(tmp_path / f"csv{chunk}", SynthConfig(format="csv", chunk_rows=chunk, **SMALL), progress=False)
        generate(tmp_path / f"pq{chunk}", SynthConfig(chunk_rows=chunk, **SMALL), progress=False)
    for name in ("engagements.csv", "tweets.csv", "users.csv"):
        assert (tmp_path / "csv777" / name).read_bytes() == (tmp_path / "csv1000000" / name).read_bytes()
    small = pq.ParquetFile(tmp_path / "pq777" / "engagements.parquet")
    big = pq.ParquetFile(tmp_path / "pq1000000" / "engagements.parquet")
    assert small.metadata.num_row_groups > 1 == big.metadata.num_row_groups
    assert small.read().equals(big.read())


@pytest.mark.parametrize("fmt,gz", [("csv", False), ("tsv", False), ("jsonl", False),
                                    ("csv", True), ("tsv", True), ("jsonl", True)])
def test_text_formats_match_parquet(tmp_path, fmt, gz):
    ref = generate(tmp_path / "pq", SynthConfig(**SMALL), progress=False)
    m = generate(tmp_path / fmt, SynthConfig(format=fmt, gzip=gz, **SMALL), progress=False)
    assert m["counts"] == ref["counts"]
    for name, cols in m["columns"].items():
        path = tmp_path / fmt / m["files"][name]
        assert path.name == f"{name}.{fmt}" + (".gz" if gz else "")
        if gz:
            assert path.read_bytes()[:2] == b"\x1f\x8b"
        got = read(tmp_path / fmt, name, m)
        want = read(tmp_path / "pq", name, ref)
        assert list(got.columns) == cols and len(got) == len(want)
        for col in ("user_id", "tweet_id", "text", "engagement", "hashtag"):
            if col in cols:
                assert got[col].astype(str).tolist() == want[col].astype(str).tolist(), (name, col)
    e = read(tmp_path / fmt, "engagements", m)
    assert e.timestamp.astype(np.int64).tolist() == read(tmp_path / "pq", "engagements", ref).timestamp.tolist()


def test_languages(tmp_path):
    m = generate(tmp_path / "ml", SynthConfig(languages="en,es,fr,de", **SMALL), progress=False)
    t = read(tmp_path / "ml", "tweets", m)
    u = read(tmp_path / "ml", "users", m)
    assert set(t.lang) == {"en", "es", "fr", "de"} and set(u.lang) == {"en", "es", "fr", "de"}
    assert (t.lang.value_counts().index[0]) == "en"  # first listed is the most common
    es = " ".join(t.text[t.lang == "es"]).split()
    en = " ".join(t.text[t.lang == "en"]).split()
    assert es.count("que") > 20 and en.count("que") == 0 and en.count("the") > 20
    # Tweets are written in their author's language.
    lang_of = u.set_index("user_id").lang
    assert (lang_of[t.author_id].to_numpy() == t.lang.to_numpy()).all()


# ----------------------------------------------------------------------------- noise


def test_no_malformed_rows_by_default(default_data):
    _, _, e, _, _ = default_data
    assert (e.user_id != "").all() and (e.tweet_id != "").all()
    assert e.timestamp.notna().all()
    assert set(e.engagement) <= set(synth.ALL_TYPES)


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_malformed_rows_only_when_asked(tmp_path, fmt):
    m = generate(tmp_path / fmt, SynthConfig(format=fmt, malformed_rate=0.02, **SMALL), progress=False)
    bad = m["counts"]["malformed"]
    assert set(bad) == set(synth.MALFORMED_KINDS) and all(v > 0 for v in bad.values())
    assert abs(sum(bad.values()) - 0.02 * 20_000) < 4 * np.sqrt(0.02 * 20_000)
    e = read(tmp_path / fmt, "engagements", m)
    assert (e.user_id == "").sum() == bad["empty_user"]
    assert (e.tweet_id == "").sum() == bad["empty_tweet"]
    assert (~e.engagement.isin(synth.ALL_TYPES)).sum() == bad["bad_engagement"]
    if fmt == "parquet":
        assert e.timestamp.isna().sum() == bad["bad_timestamp"]
    else:
        ts = pd.to_numeric(e.timestamp, errors="coerce")
        assert ts.isna().sum() == bad["bad_timestamp"]
        if fmt == "jsonl":  # valid timestamps stay JSON numbers
            first = json.loads((tmp_path / fmt / m["files"]["engagements"]).open().readline())
            assert isinstance(first["timestamp"], int) or first["timestamp"] in synth._BAD_TIMESTAMPS
    # Clean rows are all still there: the file minus malformed rows has the clean count.
    assert len(e) - sum(bad.values()) == m["counts"]["engagements"] + m["counts"]["duplicates"]


# ----------------------------------------------------------------------------- atomicity, config, CLI


def test_failed_generation_leaves_no_directory(tmp_path, monkeypatch):
    real = synth._engagement_block
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(synth, "_engagement_block", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        generate(tmp_path / "out", SynthConfig(**SMALL), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_overwrite(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ArtifactError, match="--overwrite"):
        generate(out, SynthConfig(**SMALL), progress=False)
    assert (out / "keep.txt").read_text() == "mine"
    generate(out, SynthConfig(**SMALL), overwrite=True, progress=False)
    assert not (out / "keep.txt").exists() and (out / "manifest.json").exists()


@pytest.mark.parametrize("kwargs,option", [
    (dict(users=0), "--users"),
    (dict(tweets=5, topics=8), "--tweets"),
    (dict(engagements=100, tweets=5000), "--engagements"),
    (dict(topics=0), "--topics"),
    (dict(format="xml"), "--format"),
    (dict(gzip=True), "--gzip"),
    (dict(bots=1.0), "--bots"),
    (dict(users=1, bots=0.6), "--bots"),
    (dict(duplicate_rate=-0.1), "--duplicate-rate"),
    (dict(malformed_rate=1.5), "--malformed-rate"),
    (dict(languages="en,xx"), "--languages"),
    (dict(languages="en,en"), "--languages"),
    (dict(languages=""), "--languages"),
    (dict(span_days=0), "--span-days"),
    (dict(start=-5), "--start"),
    (dict(chunk_rows=0), "--chunk-rows"),
    (dict(seed=-1), "--seed"),
    (dict(rates={"like": 1.0}), "--rates"),
    (dict(rates={"fav": 0.0}), "--rates"),
])
def test_config_validation(kwargs, option):
    with pytest.raises(InputError, match=option):
        SynthConfig(**kwargs)


def test_parse_rates():
    assert synth.parse_rates("fav=0.5,retweet=0.5") == {"fav": 0.5, "retweet": 0.5, "reply": 0.0, "quote": 0.0}
    with pytest.raises(InputError, match="--rates"):
        synth.parse_rates("boost=1")


def test_cli_help(capsys):
    from coengage.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["synth", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for option in ("--out", "--users", "--tweets", "--engagements", "--topics", "--seed", "--format", "--gzip",
                   "--bots", "--duplicate-rate", "--malformed-rate", "--languages", "--span-days", "--start",
                   "--chunk-rows", "--overwrite"):
        assert option in text


def test_cli_run_and_errors(tmp_path, capsys):
    from coengage.cli import main

    out = tmp_path / "s"
    args = ["-q", "synth", "--out", str(out), "--users", "300", "--tweets", "600", "--engagements", "5000",
            "--seed", "1", "--format", "tsv", "--gzip", "--rates", "fav=1,retweet=1"]
    assert main(args) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["config"]["seed"] == 1 and m["files"]["engagements"] == "engagements.tsv.gz"
    assert m["counts"]["by_engagement"]["reply"] == 0 < m["counts"]["by_engagement"]["retweet"]
    assert main(args) == 2  # exists, no --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert main(["synth", "--out", str(tmp_path / "x"), "--users", "0"]) == 2
    assert "--users" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
