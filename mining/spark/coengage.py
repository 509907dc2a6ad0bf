"""Co-engagement candidates on Spark: the same definitions as :mod:`mining.coengagement`.

Input: an edge DataFrame ``(u long, t long, time long)`` with one row per (user, tweet,
engagement type) edge, ``u``/``t`` being node ids (their order is the tie-break order of the
local kernel: order of first appearance). Output: ``(a long, b long, score double)``, both
orders of each pair, at most ``top_k`` per ``a``.

The plan (every step is a join or an aggregation keyed by user or by pair):

1. ``deg(u)`` = edges per user; users with ``deg(u) > cap`` are dropped (they count nowhere);
2. ``n(t)`` = distinct kept users of tweet t;
3. per kept user, the self-join of their edges gives ``(u, a, b)`` with ``a != b`` (and, with a
   window, ``|t_a - t_b| <= W`` for some pair of their engagement times), made distinct: at most
   ``deg(u)^2 <= cap^2`` rows per user, so the cap bounds the join;
4. ``count(a, b)`` = rows per (a, b); swing sums ``1/log2(2 + deg(u))`` over the shared users in
   ascending user order (the order the local kernel adds them, so the sums are bit-identical);
5. ``count >= min_count``; the score (count, cosine, jaccard, swing);
6. top-k per ``a`` by score descending, ties by ``b`` ascending; with ``salt > 1`` first within
   ``(a, hash(b) mod salt)`` buckets, then per ``a`` -- exact (the global top-k of ``a`` is inside
   the union of its buckets' top-k), and a tweet with millions of candidates is ranked by many tasks.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from mining.coengagement import NORMALIZATIONS

log = logging.getLogger(__name__)


def validate(max_user_degree, window_s, min_count, normalize, top_k, salt=1) -> None:
    """The checks of :func:`mining.coengagement.coengagement_pairs` (ValueError with the same wording)."""
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {sorted(NORMALIZATIONS)}, got {normalize!r}")
    if int(max_user_degree) != max_user_degree or max_user_degree < 1:
        raise ValueError(f"max_user_degree must be an integer >= 1, got {max_user_degree!r}")
    if int(min_count) != min_count or min_count < 1:
        raise ValueError(f"min_count must be an integer >= 1, got {min_count!r}")
    if top_k is not None and (int(top_k) != top_k or top_k < 1):
        raise ValueError(f"top_k must be None or an integer >= 1, got {top_k!r}")
    if window_s is not None and not (np.isfinite(window_s) and window_s >= 0):
        raise ValueError(f"window_s must be None or a number of seconds >= 0, got {window_s!r}")
    if int(salt) != salt or salt < 1:
        raise ValueError(f"salt must be an integer >= 1, got {salt!r}")


def swing_weights(degrees) -> np.ndarray:
    """``1 / log2(2 + d)`` in float64, bit-identical to the local Numba kernel.

    The kernel's ``np.log2`` compiles to the C library's ``log2``, which ``math.log2`` also
    calls; numpy's own vectorised ``np.log2`` (AVX-512 builds) can differ from it in the last
    bit, and so can Java's, so neither is used here.
    """
    return np.array([1.0 / math.log2(2.0 + float(d)) for d in np.asarray(degrees).ravel()], dtype=np.float64)


def coengage_candidates(edges, *, max_user_degree=100, window_s=None, min_count=2, normalize="count",
                        top_k=None, salt=1):
    """Candidate pairs ``(a, b, score)`` as a Spark DataFrame (see the module docstring)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    validate(max_user_degree, window_s, min_count, normalize, top_k, salt)
    spark = edges.sparkSession
    cap = int(max_user_degree)
    e = edges.select(F.col("u").cast("long").alias("u"), F.col("t").cast("long").alias("t"),
                     F.col("time").cast("long").alias("time"))
    deg = e.groupBy("u").agg(F.count(F.lit(1)).alias("deg")).where(F.col("deg") <= cap)
    kept = e.join(deg, "u")  # (u, t, time, deg) of kept users only
    ut = kept.select("u", "t", "deg").distinct()
    n_of = ut.groupBy("t").agg(F.count(F.lit(1)).alias("n"))

    if window_s is None:
        x = ut.select("u", F.col("t").alias("a"), "deg")
        y = ut.select("u", F.col("t").alias("b"))
        trip = x.join(y, "u").where(F.col("a") != F.col("b"))  # distinct (u, a, b) already
    else:
        w = int(np.floor(window_s))
        x = kept.select("u", F.col("t").alias("a"), F.col("time").alias("ta"), "deg")
        y = kept.select("u", F.col("t").alias("b"), F.col("time").alias("tb"))
        trip = (x.join(y, "u")
                .where((F.col("a") != F.col("b")) & (F.abs(F.col("ta") - F.col("tb")) <= w))
                .select("u", "a", "b", "deg").distinct())

    if normalize == "swing":
        degrees = [r[0] for r in deg.select("deg").distinct().collect()]
        wt = spark.createDataFrame([(int(d), float(v)) for d, v in zip(degrees, swing_weights(degrees))],
                                   "deg long, w double")
        trip = trip.join(F.broadcast(wt), "deg")
        pairs = trip.groupBy("a", "b").agg(
            F.count(F.lit(1)).alias("cnt"),
            # add the weights in ascending user order, as the local kernel does: bit-identical sums
            F.aggregate(F.transform(F.array_sort(F.collect_list(F.struct("u", "w"))), lambda s: s["w"]),
                        F.lit(0.0).cast("double"), lambda acc, v: acc + v).alias("score"))
        pairs = pairs.where(F.col("cnt") >= int(min_count))
    else:
        pairs = trip.groupBy("a", "b").agg(F.count(F.lit(1)).alias("cnt")).where(F.col("cnt") >= int(min_count))
        cnt = F.col("cnt").cast("double")
        if normalize == "count":
            pairs = pairs.withColumn("score", cnt)
        else:
            na = n_of.select(F.col("t").alias("a"), F.col("n").alias("na"))
            nb = n_of.select(F.col("t").alias("b"), F.col("n").alias("nb"))
            pairs = pairs.join(na, "a").join(nb, "b")
            if normalize == "cosine":
                score = cnt / F.sqrt(F.col("na").cast("double") * F.col("nb").cast("double"))
            else:
                score = cnt / (F.col("na") + F.col("nb") - F.col("cnt")).cast("double")
            pairs = pairs.withColumn("score", score)
    pairs = pairs.select("a", "b", "score")
    if top_k is not None:
        k = int(top_k)
        if salt > 1:
            bucket = F.pmod(F.xxhash64("b"), F.lit(int(salt)))
            pairs = pairs.withColumn("_salt", bucket)
            w1 = Window.partitionBy("a", "_salt").orderBy(F.col("score").desc(), F.col("b").asc())
            pairs = pairs.withColumn("_r", F.row_number().over(w1)).where(F.col("_r") <= k).drop("_r", "_salt")
        w2 = Window.partitionBy("a").orderBy(F.col("score").desc(), F.col("b").asc())
        pairs = pairs.withColumn("_r", F.row_number().over(w2)).where(F.col("_r") <= k).drop("_r")
    return pairs
