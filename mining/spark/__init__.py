"""mining/spark/: the coengage method on Apache Spark (``coengage mine --engine spark``).

Modules:

* :mod:`mining.spark.session`: a SparkSession from the environment (spark-submit) or a local one;
  pyspark is imported only here, lazily, with a clear error when it or Java is missing;
* :mod:`mining.spark.coengage`: candidate pairs ``(a, b, score)`` from an edge DataFrame with the
  same user degree cap, time window, normalisations and top-k tie-breaking as
  :func:`mining.coengagement.coengagement_pairs`;
* :mod:`mining.spark.sources`: edges from a graph artifact, or from raw logs with the cleaning
  rules of ``coengage graph build``;
* :mod:`mining.spark.postprocess`: the post-processing steps of :mod:`mining.postprocess` as
  Spark transformations, and the partitioned Parquet writer;
* :mod:`mining.spark.engine`: the orchestration behind the CLI.

Never imports dgl (nor pyspark at import time).
"""
