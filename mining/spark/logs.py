"""Raw engagement logs -> cleaned edges on Spark, with the rules of ``coengage graph build``.

Same column mapping and options (:class:`graph.build.BuildConfig`, from ``--config`` YAML and
flags), same cleaning: a row is dropped under the first reason that applies, in the order
``empty_user`` (null or whitespace-only id), ``empty_tweet``, ``empty_type``,
``bad_timestamp`` (neither unix seconds nor ISO-8601; strings are parsed by
:func:`graph.build.parse_times` itself, in a pandas UDF), ``unknown_type`` (a type not in
``types`` with ``unknown_types: drop``; ``error`` stops naming the file and the type; ``keep``
adds it with weight 1). ``strict`` makes the first dropped row an error naming the file, the
row and the column. Duplicate (user, tweet, type) rows become one edge with the latest time.

Node ids: the local build numbers users and tweets in order of first appearance among the kept
rows (files in the order given, rows in file order), and the coengage kernel breaks score ties
by that order. Here each row gets the sort key ``(file index, split start, row in split)`` and
a node's id is the rank of its first key, so ties break the same way. Ids stay the original
strings in every output.
"""


import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from coengage.errors import InputError

log = logging.getLogger(__name__)

DROP_REASONS = ("empty_user", "empty_tweet", "empty_type", "bad_timestamp", "unknown_type")
_REASON_TEXT = {
    "empty_user": "empty user id", "empty_tweet": "empty tweet id", "empty_type": "empty engagement type",
    "bad_timestamp": "timestamp that is neither unix seconds nor ISO-8601",
    "unknown_type": "engagement type not in the configured types",
}
_BLANK = r"^\s*$"


@dataclass
class LogEdges:
    """What :func:`read_logs` returns: cleaned rows and bookkeeping."""

    rows: object  # DataFrame: user string, tweet string, etype string, time long, okey struct (kept rows)
    paths: list = field(default_factory=list)
    relations: list = field(default_factory=list)
    type_weights: dict = field(default_factory=dict)
    dropped: dict = field(default_factory=dict)
    rows_read: int = 0


def is_remote(pattern: str) -> bool:
    return "://" in str(pattern)


def log_paths(cfg) -> list[str]:
    """Local files/globs expanded as by `graph build` (sorted per pattern); URIs (hdfs://, s3a://) as given."""
    from graph import ingest

    local = [p for p in cfg.log if not is_remote(p)]
    out = [str(p) for p in ingest.expand_paths(local, "log")] if local else []
    return out + [p for p in cfg.log if is_remote(p)]


def required_columns(cfg) -> dict:
    req = {"user": cfg.user_col, "tweet": cfg.item_col}
    if cfg.type_col:
        req["type"] = cfg.type_col
    if cfg.time_col:
        req["time"] = cfg.time_col
    return req


def _reader(spark, path: str, fmt: str, cfg):
    r = spark.read
    if fmt == "parquet":
        return r.parquet(path)
    if fmt in ("csv", "tsv"):
        return (r.option("header", True).option("sep", "," if fmt == "csv" else "\t").option("inferSchema", False)
                .option("encoding", cfg.encoding).option("multiLine", False).csv(path))
    return r.option("encoding", cfg.encoding).json(path)


def _time_parser(unit: str = "s"):
    """A pandas UDF: strings -> (unix seconds, ok), by graph.build.parse_times (the local rules);
    ``unit``: that of numeric epoch strings."""
    import pandas as pd
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("secs long, ok boolean")
    def parse(s: pd.Series) -> pd.DataFrame:
        import numpy as np
        import pyarrow as pa

        from graph.build import parse_times

        secs, ok = parse_times(pa.array(s.astype(object).where(s.notna(), None), pa.string()), unit)
        return pd.DataFrame({"secs": np.asarray(secs, np.int64), "ok": np.asarray(ok, bool)})

    return parse


def _time_columns(col, dtype: str, parser, unit: str = "s"):
    """(unix seconds long, ok boolean) Column expressions for a time column of Spark type ``dtype``;
    numeric epoch values are in ``unit`` (s, ms, us, ns) and floored to seconds, as locally."""
    from pyspark.sql import functions as F

    from graph.build import _UNIT_DIV

    div = _UNIT_DIV[unit]
    if dtype in ("bigint", "int", "smallint", "tinyint"):
        v = col.cast("long")
        if div > 1:  # numpy's floor_divide: v - pmod(v, div) is an exact multiple of div, and exact as a double
            v = ((v - F.pmod(v, F.lit(div).cast("long"))) / div).cast("long")  # (|v| < 2^53 * 2^9 here)
        return F.coalesce(v, F.lit(0)), col.isNotNull()
    if dtype in ("double", "float") or dtype.startswith("decimal"):
        v = col.cast("double") / div if div > 1 else col.cast("double")
        ok = col.isNotNull() & ~F.isnan(v) & (F.abs(v) < 9e15)
        return F.when(ok, F.floor(v).cast("long")).otherwise(F.lit(0)), F.coalesce(ok, F.lit(False))
    if dtype.startswith("timestamp"):
        micros = F.unix_micros(col.cast("timestamp"))
        return F.coalesce(F.floor(micros / 1_000_000).cast("long"), F.lit(0)), col.isNotNull()
    if dtype == "date":
        return F.coalesce(F.unix_date(col).cast("long") * 86400, F.lit(0)), col.isNotNull()
    if dtype == "string":
        parsed = parser(col)
        return parsed["secs"], parsed["ok"]
    raise InputError(f"timestamp column has type {dtype}; expected unix seconds (integer or decimal) or ISO-8601 strings")


def _id_column(col, dtype: str, path: str, name: str):
    from pyspark.sql import functions as F

    if dtype in ("double", "float"):
        raise InputError(f"{path}: column {name!r}: ids are floating-point numbers ({dtype}); "
                         "ids must be strings or integers")
    s = col.cast("string")
    return s, s.isNull() | s.rlike(_BLANK)


def read_logs(spark, cfg) -> LogEdges:
    """Read, clean and order every log file (lazy DataFrames; counts are computed here)."""
    from pyspark.sql import functions as F

    from graph import ingest

    cfg.validate()
    paths = log_paths(cfg)
    fmts = [ingest.detect_format(p, cfg.format) for p in paths]
    required = required_columns(cfg)
    for p, fmt in zip(paths, fmts):  # every header, before anything heavy (local files)
        if not is_remote(p):
            ingest.require_columns(p, ingest.read_header(p, fmt, cfg.encoding), required)
    parser = _time_parser(cfg.time_unit)
    parts = []
    for i, (p, fmt) in enumerate(zip(paths, fmts)):
        df = _reader(spark, p, fmt, cfg)
        ingest.require_columns(p, df.columns, required)  # remote files; JSON keys absent from every record
        types = dict(df.dtypes)
        user, user_bad = _id_column(F.col(f"`{cfg.user_col}`"), types[cfg.user_col], p, cfg.user_col)
        tweet, tweet_bad = _id_column(F.col(f"`{cfg.item_col}`"), types[cfg.item_col], p, cfg.item_col)
        if cfg.type_col:
            etype = F.col(f"`{cfg.type_col}`").cast("string")
            type_bad = etype.isNull() | etype.rlike(_BLANK)
        else:
            etype, type_bad = F.lit("engaged"), F.lit(False)
        if cfg.time_col:
            secs, ok = _time_columns(F.col(f"`{cfg.time_col}`"), types[cfg.time_col], parser, cfg.time_unit)
        else:
            secs, ok = F.lit(0).cast("long"), F.lit(True)
        reason = (F.when(user_bad, "empty_user").when(tweet_bad, "empty_tweet").when(type_bad, "empty_type")
                  .when(~ok, "bad_timestamp"))
        parts.append(df.select(
            user.alias("user"), tweet.alias("tweet"), etype.alias("etype"), secs.alias("time"),
            reason.alias("reason"),
            F.struct(F.lit(i).alias("f"), F.col("_metadata.file_block_start").alias("blk"),
                     F.monotonically_increasing_id().alias("row")).alias("okey")))
    rows = parts[0]
    for part in parts[1:]:
        rows = rows.unionByName(part)
    rows = rows.persist()

    # unknown types: only among rows no earlier reason drops
    seen = (rows.where(F.col("reason").isNull()).groupBy("etype").agg(F.min("okey").alias("first"))
            .orderBy("first").collect())
    names = [r["etype"] for r in seen]
    fixed = cfg.types is not None
    relations = list(cfg.types or {})
    weights = dict(cfg.types or {})
    unknown = [n for n in names if n not in weights]
    if unknown and fixed and cfg.unknown_types == "error":
        first = seen[names.index(unknown[0])]["first"]
        raise InputError(f"{paths[first['f']]}: unknown engagement type {unknown[0]!r}; known types: "
                         f"{', '.join(relations)}. Add it to --types, or pass --unknown-types keep|drop")
    if unknown and fixed and cfg.unknown_types == "drop":
        rows = rows.withColumn("reason", F.when(F.col("reason").isNull() & F.col("etype").isin(unknown),
                                                "unknown_type").otherwise(F.col("reason")))
    else:
        for n in unknown:
            relations.append(n)
            weights[n] = 1.0
    if not fixed:
        relations = sorted(relations)

    counts = {r["reason"]: r["n"] for r in rows.groupBy("reason").agg(F.count(F.lit(1)).alias("n")).collect()}
    dropped = {r: int(counts.get(r, 0)) for r in DROP_REASONS}
    rows_read = int(sum(counts.values()))
    if cfg.strict and any(dropped.values()):
        raise _strict_error(rows, paths, fmts, cfg, dropped)
    kept = rows.where(F.col("reason").isNull()).drop("reason")
    return LogEdges(rows=kept, paths=paths, relations=relations,
                    type_weights={r: float(weights[r]) for r in relations}, dropped=dropped, rows_read=rows_read)


def _strict_error(rows, paths, fmts, cfg, dropped) -> InputError:
    """The first dropped row (in file order): its file, row number and reason."""
    from pyspark.sql import functions as F

    from graph.build import _row_where

    if dropped["unknown_type"] and sum(dropped.values()) == dropped["unknown_type"]:
        first = rows.where(F.col("reason") == "unknown_type").agg(F.min("okey").alias("k")).collect()[0]["k"]
        return InputError(f"{paths[first['f']]}: {dropped['unknown_type']} rows with an engagement type not in "
                          "--types; --strict makes dropped rows fatal")
    bad = rows.where(F.col("reason").isNotNull() & (F.col("reason") != "unknown_type"))
    first = bad.orderBy("okey").select("okey", "reason").first()
    k, reason = first["okey"], first["reason"]
    # the row number: rows of the same file before it
    before = (F.col("okey.blk") < F.lit(k["blk"]).cast("long")) | (
        (F.col("okey.blk") == F.lit(k["blk"]).cast("long")) & (F.col("okey.row") < F.lit(k["row"]).cast("long")))
    row0 = rows.where((F.col("okey.f") == int(k["f"])) & before).count()
    column = {"empty_user": cfg.user_col, "empty_tweet": cfg.item_col, "empty_type": cfg.type_col,
              "bad_timestamp": cfg.time_col}[reason]
    path = paths[k["f"]]
    return InputError(f"{path}: {_row_where(Path(path), fmts[k['f']], int(row0))}: {_REASON_TEXT[reason]} "
                      f"(column {column!r}); --strict makes dropped rows fatal")


def edges_with_ids(logs: LogEdges):
    """``(edges (u, t, time), tweets (t, tweet_id), users (u, user_id))`` with first-appearance ids.

    Duplicate (user, tweet, type) rows are merged into one edge with the latest time. Ids are
    increasing in order of first appearance (not dense: the rank in a range-partitioned sort).
    """
    from pyspark.sql import functions as F

    rows = logs.rows

    def ids(col, name):
        first = rows.groupBy(col).agg(F.min("okey").alias("k"))
        return first.orderBy("k").withColumn(name, F.monotonically_increasing_id()).select(col, name)

    users = ids("user", "u").persist()
    tweets = ids("tweet", "t").persist()
    edges = (rows.groupBy("user", "tweet", "etype").agg(F.max("time").alias("time"))
             .join(users, "user").join(tweets, "tweet").select("u", "t", "time", "etype"))
    return edges, tweets.withColumnRenamed("tweet", "tweet_id"), users.withColumnRenamed("user", "user_id")
