"""Orchestration of ``coengage mine --engine spark`` (graph artifact or raw logs; single or partitioned output).

Routes (``--spark-output``):

* ``single`` (default): Spark computes the candidate pairs (the expensive part: the per-user
  self-join and the aggregation per pair); they come back to the driver as Parquet, and the
  local post-processing (:func:`mining.postprocess.postprocess`) and writer
  (:func:`mining.pairs_io.write_pairs`) make the same pair file as the local engine. Needs the
  candidates (16 bytes a pair: at most ``top_k`` per tweet) and the texts on the driver.
* ``partitioned``: every step runs in Spark (:mod:`mining.spark.postprocess`) and OUT becomes a
  directory of Parquet part files with the same schema, plus ``OUT.manifest.json``. Nothing
  has to fit on the driver except, with a popularity cap, one counter per tweet (the cap is a
  greedy pass in score order, which the driver streams).
"""

from __future__ import annotations

import logging
import shutil
import time

from coengage.errors import InputError

log = logging.getLogger(__name__)


def run_coengage_spark(graph, cfg, queries, progress: bool, *, spark_options=None):
    """A drop-in for :func:`mining.mine.run_coengage`: candidates ``(a, b, score, info)`` computed by Spark."""
    from mining.spark.coengage import coengage_candidates
    from mining.spark.session import SparkOptions, get_spark
    from mining.spark.sources import collect_candidates, graph_edges, scratch_dir

    opts = spark_options or SparkOptions()
    spark = get_spark(opts)
    scratch = scratch_dir(opts.tmp_dir, "coengage-spark-")
    t0 = time.perf_counter()
    try:
        edges = graph_edges(spark, graph, scratch)
        pairs = coengage_candidates(edges, max_user_degree=cfg.max_user_degree, window_s=cfg.window_s,
                                    min_count=cfg.min_count, normalize=cfg.normalize, top_k=cfg.top_k,
                                    salt=opts.salt)
        a, b, s = collect_candidates(pairs, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    info = {"engine": "spark", "spark": opts.to_dict(), "spark_master": spark.sparkContext.master,
            "spark_version": spark.version, "spark_s": round(time.perf_counter() - t0, 3)}
    log.info("spark coengage: %d directed candidate pairs in %.1f s", len(a), info["spark_s"])
    return a, b, s, info


def check_method(method: str, degree_cap_mode: str | None = None) -> None:
    if method != "coengage":
        raise InputError(f"--engine spark runs --method coengage only (got --method {method}); "
                         "use --engine local for walk and knn")
    if degree_cap_mode not in (None, "skip"):
        raise InputError("--engine spark: --degree-cap-mode sample is not supported; the coengage method drops "
                         "users over --max-user-degree entirely (skip), the same on both engines")



def _stage_tweets(spark, tweet_ids, scratch):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = scratch / "tweets"
    out.mkdir(parents=True, exist_ok=True)
    ids = np.asarray(tweet_ids, dtype=object)
    pq.write_table(pa.table({"t": pa.array(np.arange(len(ids), dtype=np.int64)),
                             "tweet_id": pa.array(ids.astype(str), pa.string())}), out / "part-00000.parquet")
    return spark.read.schema("t long, tweet_id string").parquet(str(out))


def graph_source(spark, graph_dir, scratch) -> dict:
    """Edges, tweet ids and texts of a graph artifact as DataFrames (node ids = graph ids)."""
    from graph.artifact import load
    from mining.mine import text_array
    from mining.spark.sources import graph_edges, texts_frame

    graph = load(graph_dir)
    text_of = text_array(graph)
    return {"edges": graph_edges(spark, graph, scratch), "tweets": _stage_tweets(spark, graph.tweet_ids, scratch),
            "texts": texts_frame(spark, text_of, scratch), "n_tweets": graph.num_tweets,
            "manifest": {"graph_fingerprint": graph.fingerprint, "graph": str(graph.path)}}


def logs_source(spark, cfg, scratch) -> dict:
    """Edges, tweet ids and texts from raw logs, cleaned as by `graph build` (see mining.spark.logs)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyspark.sql import functions as F

    from coengage.artifacts import combine_fingerprints
    from graph import ingest
    from graph.build import _check_duplicate_texts, _fingerprints, check_time_magnitude, read_texts
    from mining.spark.logs import edges_with_ids, is_remote, read_logs

    if cfg.holdout:
        raise InputError("--engine spark --logs does not split off held-out tweets (holdout); build the graph with "
                         "`coengage graph build --holdout` and mine GRAPH_DIR instead")
    logs = read_logs(spark, cfg)
    edges, tweets, _users = edges_with_ids(logs)
    # materialise the cleaned edges and the id table once: a short plan for everything after,
    # and ids (from monotonically_increasing_id over a sort) computed exactly once
    edges.select("u", "t", "time").write.mode("overwrite").parquet(str(scratch / "log_edges"))
    tweets.write.mode("overwrite").parquet(str(scratch / "log_tweets"))
    logs.rows.unpersist()
    spark = edges.sparkSession
    edges = spark.read.parquet(str(scratch / "log_edges"))
    tweets = spark.read.parquet(str(scratch / "log_tweets"))
    n_edges = edges.count()
    if n_edges == 0:
        reasons = ", ".join(f"{k}={v}" for k, v in logs.dropped.items() if v) or "none"
        raise InputError(f"no edges to mine: {logs.rows_read} rows read from {len(logs.paths)} file(s), "
                         f"all dropped (dropped: {reasons})")
    if cfg.time_col:  # (as graph build: seconds past the year 5138 are a unit given wrong)
        from pyspark.sql import functions as F

        check_time_magnitude(int(edges.agg(F.max(F.abs("time"))).collect()[0][0] or 0), cfg)
    total_dropped = sum(logs.dropped.values())
    if total_dropped:
        log.warning("dropped %d of %d rows: %s", total_dropped, logs.rows_read,
                    ", ".join(f"{k}={v}" for k, v in logs.dropped.items() if v))
    text_paths = ingest.expand_paths(cfg.texts, "texts") if cfg.texts else []
    out = scratch / "texts"
    out.mkdir(parents=True, exist_ok=True)
    frame = read_texts(cfg, text_paths) if text_paths else None
    if frame is not None:
        _check_duplicate_texts(frame, text_paths, cfg)  # (as graph build: warned, fatal with --strict)
    if frame is not None:  # as graph.writer.attach_texts: the first row of an id wins, then empty texts go
        frame = frame[["tweet_id", "text"]].astype({"tweet_id": str})
        frame = frame[~frame["tweet_id"].duplicated(keep="first")]
        text = frame["text"].fillna("").astype(str)
        frame = frame.assign(text=text)[text.str.strip() != ""]
        table = pa.table({"tweet_id": pa.array(frame["tweet_id"].tolist(), pa.string()),
                          "text": pa.array(frame["text"].tolist(), pa.string())})
    else:
        table = pa.table({"tweet_id": pa.array([], pa.string()), "text": pa.array([], pa.string())})
    pq.write_table(table, out / "part-00000.parquet")
    texts = (spark.read.schema("tweet_id string, text string").parquet(str(out))
             .join(tweets, "tweet_id").select("t", "text"))
    local_inputs = [p for p in logs.paths if not is_remote(p)]
    inputs = _fingerprints(local_inputs, "log") + _fingerprints(text_paths, "texts")
    n_tweets = tweets.count()
    return {"edges": edges.select("u", "t", "time"), "tweets": tweets, "texts": texts, "n_tweets": int(n_tweets),
            "manifest": {"graph_fingerprint": None, "logs": logs.paths,
                         "logs_fingerprint": combine_fingerprints(inputs, cfg.to_dict()), "inputs": inputs,
                         "cleaning": {"rows_read": logs.rows_read, "dropped": logs.dropped, "edges": int(n_edges),
                                      "relations": logs.relations, "type_weights": logs.type_weights}},
            }


def mine_spark(graph_dir=None, method: str = "coengage", out=None, *, build_config=None, spark_options=None,
               fmt=None, with_text: bool = False, strict: bool = False, progress: bool = True, overwrite: bool = False,
               **options):
    """``coengage mine --engine spark`` on GRAPH_DIR or raw logs (``build_config``), single or partitioned output.

    Returns a :class:`mining.mine.MineResult` (``a``/``b`` empty for partitioned output: the
    pairs stay in the part files).
    """
    from dataclasses import asdict

    import numpy as np

    from mining.mine import MineResult, _split_options, mine
    from mining.spark.session import SparkOptions, get_spark
    from mining.spark.sources import scratch_dir

    check_method(method)
    opts = spark_options or SparkOptions()
    if build_config is None and opts.output == "single":
        return mine(graph_dir, method, out, fmt=fmt, with_text=with_text, strict=strict, progress=progress,
                    engine="spark", spark_options=opts, overwrite=overwrite, **options)
    mcfg, pcfg = _split_options(method, options)
    try:
        pcfg.validate()
    except ValueError as e:
        raise InputError(str(e)) from e
    if opts.output == "partitioned" and out is not None and fmt not in (None, "parquet"):
        raise InputError(f"--spark-output partitioned writes Parquet part files; --format {fmt} needs --spark-output single")
    if out is not None:
        from mining.pairs_io import check_pairs_output

        inputs = [graph_dir] if build_config is None else [*build_config.log, *(build_config.texts or [])]
        check_pairs_output(out, overwrite, inputs)
    from mining.spark.coengage import coengage_candidates

    spark = get_spark(opts)
    scratch = scratch_dir(opts.tmp_dir, "coengage-spark-")
    t0 = time.perf_counter()
    try:
        src = graph_source(spark, graph_dir, scratch) if build_config is None else logs_source(spark, build_config, scratch)
        t1 = time.perf_counter()
        try:
            pairs = coengage_candidates(src["edges"], max_user_degree=mcfg.max_user_degree, window_s=mcfg.window_s,
                                        min_count=mcfg.min_count, normalize=mcfg.normalize, top_k=mcfg.top_k,
                                        salt=opts.salt)
        except ValueError as e:
            raise InputError(f"mine --method {method}: {e}") from e
        n_texts = src["texts"].count()
        n_without = src["n_tweets"] - int(n_texts)
        if pcfg.require_text and n_texts == 0:
            raise InputError("the input has no tweet texts, so no pair can train a language model; give --texts")
        if n_without:
            log.warning("%d of %d tweets have no text; pairs with them are dropped", n_without, src["n_tweets"])
        eligible_df = _eligible(src, pcfg.require_text)
        if opts.output == "single":
            result = _single(src, pairs, eligible_df, pcfg, scratch, method, out, fmt, with_text)
        else:
            result = _partitioned(src, pairs, eligible_df, pcfg, method, out, with_text)
        counts, coverage, path, arrays, write_manifest = result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    t2 = time.perf_counter()
    counts["tweets"] = src["n_tweets"]
    counts["tweets_without_text"] = n_without
    problems = []
    if counts["tweets_without_text_in_candidates"]:
        problems.append(f"{counts['tweets_without_text_in_candidates']} tweets without text among the candidates")
    if counts["written"] == 0:
        problems.append("no pairs left after post-processing")
    if problems:
        msg = "; ".join(problems)
        if strict:
            raise InputError(f"mine --strict: {msg}")
        log.warning("%s", msg)
    config = {"method": method, method: asdict(mcfg), "postprocess": pcfg.to_dict(), "with_text": with_text,
              "engine": "spark", "spark_output": opts.output}
    manifest = dict(src["manifest"])
    manifest.pop("_F", None)
    manifest.update({
        "method": method, "config": config, "counts": counts, "coverage_2plus_engagers": coverage,
        "info": {"engine": "spark", "spark": opts.to_dict(), "spark_master": spark.sparkContext.master,
                 "spark_version": spark.version},
        "timing": {"load_s": t1 - t0, "method_s": t2 - t1, "postprocess_s": 0.0},
    })
    log.info("%s: %d pairs, %d tweets paired, coverage of tweets with >= 2 engagers %.3f",
             method, counts["written"], counts["tweets_paired"], coverage)
    if path is not None:
        manifest = write_manifest(manifest)
    a, b, s = arrays
    return MineResult(path, a, b, s, manifest)


def _eligible(src, require_text: bool):
    """Tweets with >= 2 distinct engagers (and a text when required): the coverage denominator."""
    from pyspark.sql import functions as F

    el = src["edges"].select("u", "t").distinct().groupBy("t").agg(F.count(F.lit(1)).alias("n")).where("n >= 2")
    el = el.select("t")
    if require_text:
        el = el.join(src["texts"].select("t"), "t")
    return el


def _single(src, pairs, eligible_df, pcfg, scratch, method, out, fmt, with_text):
    """Candidates to the driver; local post-processing and writer."""
    from pathlib import Path

    import numpy as np

    from mining.pairs_io import pairs_table, write_pairs
    from mining.postprocess import postprocess
    from mining.spark.sources import collect_candidates

    a, b, s = collect_candidates(pairs, scratch)
    tw = src["tweets"].orderBy("t").collect()
    ids = np.array([r["t"] for r in tw], dtype=np.int64)  # increasing (first-appearance ranks)
    tweet_ids = np.array([r["tweet_id"] for r in tw], dtype=object)
    text_of = np.full(len(ids), None, dtype=object)
    for r in src["texts"].collect():
        text_of[np.searchsorted(ids, r["t"])] = r["text"]
    a, b = np.searchsorted(ids, a), np.searchsorted(ids, b)  # dense node ids, same order
    a, b, s, counts = postprocess(a, b, s, text_of=text_of, config=pcfg, n_tweets=len(ids))
    eligible = np.searchsorted(ids, np.array([r["t"] for r in eligible_df.collect()], dtype=np.int64))
    paired = np.zeros(len(ids), dtype=bool)
    paired[a] = True
    paired[b] = True
    counts["tweets_with_2plus_engagers"] = int(len(eligible))
    coverage = float(paired[eligible].mean()) if len(eligible) else 0.0
    path = None if out is None else Path(out)

    def write_manifest(manifest):
        table = pairs_table(tweet_ids, a, b, s, method, text_of if with_text else None)
        m = write_pairs(path, table, fmt=fmt, manifest=manifest)
        log.info("wrote %d pairs to %s", counts["written"], path)
        return m

    return counts, coverage, path, (a, b, s), write_manifest


def _partitioned(src, pairs, eligible_df, pcfg, method, out, with_text):
    """Every step in Spark; OUT is a directory of Parquet parts (written atomically), manifest beside it."""
    from pathlib import Path

    import numpy as np
    from pyspark.sql import functions as F

    from coengage.artifacts import atomic_dir, now_iso, write_json
    from mining.pairs_io import KIND, SCHEMA_VERSION, manifest_path, parts_fingerprint
    from mining.spark.postprocess import postprocess_spark, write_partitioned

    kept, counts = postprocess_spark(pairs, src["texts"], pcfg)
    empty = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
    if out is None:
        raise InputError("--spark-output partitioned needs --out DIR")
    path = Path(out)
    with atomic_dir(path) as tmp:
        res = write_partitioned(kept, tmp, tweets=src["tweets"], texts=src["texts"], method=method,
                                with_text=with_text, popularity_cap=pcfg.popularity_cap)
        parts = sorted(p for p in tmp.glob("*.parquet"))
        fingerprint = parts_fingerprint(tmp, [p.name for p in parts])
    counts.update(res)
    # coverage: eligible tweets that appear in a written pair (computed by Spark from the parts)
    spark = src["tweets"].sparkSession
    written = spark.read.parquet(str(path))
    paired = (written.select(F.col("tweet_a").alias("tweet_id"))
              .union(written.select(F.col("tweet_b").alias("tweet_id"))).distinct())
    el = eligible_df.join(src["tweets"], "t").select("tweet_id")
    n_el = el.count()
    counts["tweets_with_2plus_engagers"] = int(n_el)
    coverage = float(el.join(paired, "tweet_id").count() / n_el) if n_el else 0.0
    cols = ["tweet_a", "tweet_b", "score", "method"] + (["text_a", "text_b"] if with_text else [])

    def write_manifest(manifest):
        full = dict(manifest)
        full.update({"kind": KIND, "schema_version": SCHEMA_VERSION, "format": "parquet", "layout": "partitioned",
                     "parts": [p.name for p in parts], "rows": counts["written"], "columns": cols,
                     "fingerprint": fingerprint, "created": now_iso()})
        write_json(manifest_path(path), full)
        log.info("wrote %d pairs to %s (%d parts)", counts["written"], path, len(parts))
        return full

    return counts, coverage, path, empty, write_manifest
