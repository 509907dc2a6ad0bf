"""The post-processing of :mod:`mining.postprocess` as Spark transformations (``--spark-output partitioned``).

Same steps, same order, same counts: self pairs, ``min_score``, pairs with a tweet without
text, near-duplicate texts (the local :func:`mining.postprocess.near_duplicate_mask` applied
to batches of text pairs in a pandas UDF), the best ``max_pairs_per_tweet`` per query tweet
(score descending, ties by the other tweet), one row per unordered pair (the higher score),
and the popularity cap. The cap is a greedy pass over all pairs in score order (a pair is kept
while both its tweets are in fewer than ``cap`` kept pairs): inherently sequential, so the
driver streams the sorted pairs (written by Spark to scratch Parquet, read back a batch at a time) holding one
counter per tweet, and writes the kept pairs as Parquet parts itself. Without a cap the
executors write the parts directly.
"""


import logging
from pathlib import Path

import numpy as np

from mining.postprocess import DROP_REASONS

log = logging.getLogger(__name__)


def _near_dup_udf(jaccard, shingle_size, drop_hashtags):
    import pandas as pd
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("boolean")
    def near_dup(ta: pd.Series, tb: pd.Series) -> pd.Series:
        from mining.postprocess import near_duplicate_mask

        n = len(ta)
        text_of = np.concatenate([ta.to_numpy(dtype=object), tb.to_numpy(dtype=object)])
        idx = np.arange(n, dtype=np.int64)
        return pd.Series(near_duplicate_mask(idx, idx + n, text_of, jaccard=jaccard, shingle_size=shingle_size,
                                             drop_hashtags=drop_hashtags))

    return near_dup


def postprocess_spark(pairs, texts, config):
    """``(pairs (a, b, score) with a < b, counts)``; ``texts`` is ``(t, text)`` of tweets with a text."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    config = config.validate()
    counts = {"candidates": 0, **{r: 0 for r in DROP_REASONS}}
    df = pairs.select("a", "b", "score").persist()
    n = counts["candidates"] = df.count()

    def step(new, reason):
        nonlocal df, n
        new = new.persist()
        m = new.count()
        counts[reason] += n - m
        df.unpersist()
        df, n = new, m

    step(df.where(F.col("a") != F.col("b")), "self_pairs")
    if config.min_score is not None:
        step(df.where(F.col("score") >= float(config.min_score)), "below_threshold")
    counts["tweets_without_text_in_candidates"] = 0
    has = texts.select(F.col("t"), F.lit(True).alias("_has"))
    if config.require_text:
        flagged = (df.join(has.withColumnRenamed("t", "a").withColumnRenamed("_has", "_ha"), "a", "left")
                   .join(has.withColumnRenamed("t", "b").withColumnRenamed("_has", "_hb"), "b", "left"))
        missing = (flagged.where(F.col("_ha").isNull()).select(F.col("a").alias("t"))
                   .union(flagged.where(F.col("_hb").isNull()).select(F.col("b").alias("t"))).distinct().count())
        counts["tweets_without_text_in_candidates"] = int(missing)
        step(flagged.where(F.col("_ha").isNotNull() & F.col("_hb").isNotNull()).select("a", "b", "score"),
             "without_text")
    if config.drop_near_duplicates:
        keyed = df.withColumn("lo", F.least("a", "b")).withColumn("hi", F.greatest("a", "b"))
        keys = keyed.select("lo", "hi").distinct()
        tx = texts.select("t", "text")
        keys = (keys.join(tx.withColumnRenamed("t", "lo").withColumnRenamed("text", "ta"), "lo", "left")
                .join(tx.withColumnRenamed("t", "hi").withColumnRenamed("text", "tb"), "hi", "left"))
        udf = _near_dup_udf(config.near_dup_jaccard, config.shingle_size, config.drop_hashtags)
        dup = keys.withColumn("_dup", udf(F.coalesce("ta", F.lit("")), F.coalesce("tb", F.lit("")))).select("lo", "hi", "_dup")
        step(keyed.join(dup, ["lo", "hi"]).where(~F.col("_dup")).select("a", "b", "score"), "near_duplicate_text")
    if config.max_pairs_per_tweet is not None:
        w = Window.partitionBy("a").orderBy(F.col("score").desc(), F.col("b").asc())
        step(df.withColumn("_r", F.row_number().over(w)).where(F.col("_r") <= int(config.max_pairs_per_tweet))
             .drop("_r"), "over_max_per_tweet")
    step(df.select(F.least("a", "b").alias("a"), F.greatest("a", "b").alias("b"), "score")
         .groupBy("a", "b").agg(F.max("score").alias("score")), "duplicates")
    return df, counts


def greedy_cap_stream(rows, cap: int):
    """Keep a row ``(a, b, ...)`` (in the given order) while both tweets have fewer than ``cap`` kept pairs."""
    used: dict[int, int] = {}
    for row in rows:
        a, b = row[0], row[1]
        ua, ub = used.get(a, 0), used.get(b, 0)
        if ua < cap and ub < cap:
            used[a] = ua + 1
            used[b] = ub + 1
            yield row


def write_partitioned(df, out_tmp: Path, *, tweets, texts, method: str, with_text: bool, popularity_cap,
                      rows_per_part: int = 1 << 20) -> dict:
    """Write pairs ``(a, b, score)`` sorted by (score desc, a, b) as Parquet parts into ``out_tmp``.

    Returns ``{"written", "over_popularity_cap", "tweets_paired"}``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyspark.sql import functions as F

    ids = tweets.select("t", "tweet_id")
    named = (df.join(ids.withColumnRenamed("t", "a").withColumnRenamed("tweet_id", "tweet_a"), "a")
             .join(ids.withColumnRenamed("t", "b").withColumnRenamed("tweet_id", "tweet_b"), "b"))
    cols = ["a", "b", "tweet_a", "tweet_b", "score"]
    if with_text:
        tx = texts.select("t", "text")
        named = (named.join(tx.withColumnRenamed("t", "a").withColumnRenamed("text", "text_a"), "a", "left")
                 .join(tx.withColumnRenamed("t", "b").withColumnRenamed("text", "text_b"), "b", "left"))
        cols += ["text_a", "text_b"]
    ordered = named.select(*cols).orderBy(F.col("score").desc(), F.col("a").asc(), F.col("b").asc())
    out_cols = ["tweet_a", "tweet_b", "score", "method"] + (["text_a", "text_b"] if with_text else [])
    if popularity_cap is None:
        ordered.withColumn("method", F.lit(method)).select(*out_cols).write.mode("overwrite").parquet(str(out_tmp))
        written = ordered.count()
        paired = df.select(F.col("a").alias("t")).union(df.select(F.col("b").alias("t"))).distinct().count()
        return {"written": int(written), "over_popularity_cap": 0, "tweets_paired": int(paired)}
    out_tmp.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([("tweet_a", pa.string()), ("tweet_b", pa.string()), ("score", pa.float64()),
                        ("method", pa.string())] + ([("text_a", pa.string()), ("text_b", pa.string())] if with_text else []))
    total = seen = 0
    paired: set = set()
    buf: list = []
    part = 0

    def flush():
        nonlocal buf, part
        if not buf and part:
            return
        columns = list(zip(*buf)) if buf else [[] for _ in range(len(cols))]
        data = {"tweet_a": columns[2], "tweet_b": columns[3], "score": columns[4], "method": [method] * len(buf)}
        if with_text:
            data["text_a"], data["text_b"] = columns[5], columns[6]
        pq.write_table(pa.table({k: list(v) for k, v in data.items()}, schema=schema),
                       out_tmp / f"part-{part:05d}.parquet")
        part += 1
        buf = []

    # the sorted pairs go to scratch Parquet (part files in sort order); the driver streams them
    sorted_dir = out_tmp.with_name(out_tmp.name + ".sorted")
    ordered.write.mode("overwrite").parquet(str(sorted_dir))
    try:
        def rows():
            nonlocal seen
            for f in sorted(sorted_dir.glob("part-*.parquet")):
                for batch in pq.ParquetFile(f).iter_batches(batch_size=65536, columns=cols):
                    columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
                    for row in zip(*columns):
                        seen += 1
                        yield row

        for row in greedy_cap_stream(rows(), int(popularity_cap)):
            buf.append(row)
            paired.add(row[0])
            paired.add(row[1])
            total += 1
            if len(buf) >= rows_per_part:
                flush()
    finally:
        import shutil

        shutil.rmtree(sorted_dir, ignore_errors=True)
    flush()
    return {"written": total, "over_popularity_cap": seen - total, "tweets_paired": len(paired)}
