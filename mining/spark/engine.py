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


def mine_spark(graph_dir, *, build_config=None, spark_options=None, **kwargs):
    raise InputError("--engine spark with --logs or --spark-output partitioned is not available yet")
