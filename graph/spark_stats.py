"""`coengage graph stats --engine spark`: counts and degree summaries of raw logs, computed by Spark.

The logs are read and cleaned exactly as `coengage graph build` would (the cleaning of
:mod:`mining.spark.logs`: same columns, type vocabulary, drop reasons, ``--strict``), then
duplicate (user, tweet, type) rows are merged into edges. The result has the keys of
:func:`graph.stats.compute_stats` that make sense without an artifact (no fingerprint, no
texts): nodes, edges per type, rows read, duplicates merged, dropped rows by reason, time range
and degree summaries (min/mean/median/p90/p99/max; percentiles are Spark's exact
``percentile`` over the degree table, the same definition as numpy's default).
Never imports dgl; pyspark only when called.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def _summary(deg_df, col: str, n_nodes: int) -> dict:
    """degree_summary of graph.stats over a Spark column (nodes without an edge of this type count as 0)."""
    from pyspark.sql import functions as F

    r = deg_df.agg(F.count(F.lit(1)).alias("n"), F.min(col).alias("min"), F.sum(col).alias("sum"),
                   F.max(col).alias("max"),
                   F.percentile(col, F.array(F.lit(0.5), F.lit(0.9), F.lit(0.99))).alias("q")).first()
    n_with = int(r["n"])
    zeros = n_nodes - n_with
    if n_nodes == 0:
        return {"nodes": 0, "zero_degree": 0, "min": 0, "mean": 0.0, "median": 0.0, "p90": 0.0, "p99": 0.0, "max": 0}
    if zeros:  # percentiles over all nodes, zeros included: exact, from the degree histogram
        hist = sorted((int(x["d"]), int(x["c"])) for x in deg_df.groupBy(F.col(col).alias("d")).count()
                      .withColumnRenamed("count", "c").collect())
        hist = [(0, zeros)] + hist
        q = [_hist_percentile(hist, n_nodes, p) for p in (50, 90, 99)]
    else:
        q = list(r["q"])
    return {"nodes": n_nodes, "zero_degree": zeros, "min": 0 if zeros else int(r["min"]),
            "mean": float(r["sum"] or 0) / n_nodes, "median": float(q[0]), "p90": float(q[1]), "p99": float(q[2]),
            "max": int(r["max"] or 0)}


def _hist_percentile(hist, n: int, p: float) -> float:
    """numpy's linear-interpolation percentile of a sorted histogram [(value, count)]."""
    pos = (n - 1) * p / 100.0
    lo, frac = int(pos), pos - int(pos)

    def at(i):
        c = 0
        for v, k in hist:
            c += k
            if i < c:
                return v
        return hist[-1][0]

    a = at(lo)
    return a + (at(lo + 1) - a) * frac if frac else float(a)


def compute_stats_spark(cfg, spark_options=None) -> dict:
    """Statistics of the raw logs named by ``cfg`` (a :class:`graph.build.BuildConfig`)."""
    from pyspark.sql import functions as F

    from mining.spark.logs import read_logs
    from mining.spark.session import get_spark

    spark = get_spark(spark_options)
    logs = read_logs(spark, cfg)
    rows = logs.rows
    edges = rows.groupBy("user", "tweet", "etype").agg(F.max("time").alias("time"), F.count(F.lit(1)).alias("rows"))
    edges = edges.persist()
    n_edges = edges.count()
    kept_rows = logs.rows_read - sum(logs.dropped.values())
    per_type = {r["etype"]: int(r["n"]) for r in edges.groupBy("etype").agg(F.count(F.lit(1)).alias("n")).collect()}
    n_users = edges.select("user").distinct().count()
    n_tweets = edges.select("tweet").distinct().count()
    tr = edges.agg(F.min("time").alias("lo"), F.max("time").alias("hi")).first()
    stats = {
        "path": ", ".join(logs.paths),
        "source": "raw logs (Spark)",
        "num_nodes": {"user": int(n_users), "tweet": int(n_tweets)},
        "num_edges": {r: per_type.get(r, 0) for r in logs.relations},
        "total_edges": int(n_edges),
        "relations": list(logs.relations),
        "type_weights": dict(logs.type_weights),
        "rows_read": int(logs.rows_read),
        "duplicates_merged": int(kept_rows - n_edges),
        "dropped": dict(logs.dropped),
        "time_range": [int(tr["lo"]), int(tr["hi"])] if n_edges else None,
        "degrees": {},
    }
    for node_type, key, n_nodes in (("user", "user", n_users), ("tweet", "tweet", n_tweets)):
        per = {}
        deg = edges.groupBy(key).agg(F.count(F.lit(1)).alias("d"))
        per["all"] = _summary(deg, "d", int(n_nodes))
        for r in logs.relations:
            d = edges.where(F.col("etype") == r).groupBy(key).agg(F.count(F.lit(1)).alias("d"))
            per[r] = _summary(d, "d", int(n_nodes))
        stats["degrees"][node_type] = per
    edges.unpersist()
    return stats


def format_stats_spark(stats: dict) -> str:
    """The plain-text report of :func:`graph.stats.format_stats`, for statistics of raw logs."""
    from graph.stats import format_stats

    text = format_stats(dict(stats, fingerprint="none: raw logs", texts={}))
    return text
