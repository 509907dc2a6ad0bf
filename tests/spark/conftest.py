"""One local SparkSession for every test under tests/spark (local[2], few shuffle partitions, no UI)."""

from __future__ import annotations

import shutil

import pytest

import pyspark  # noqa: F401  (pinned in requirements.lock: a missing pyspark is a failure, not a skip)


@pytest.fixture(scope="session")
def spark():
    if shutil.which("java") is None:
        pytest.fail("the Spark tests need Java (17) on PATH")
    from mining.spark.session import SparkOptions, get_spark

    session = get_spark(SparkOptions(master="local[2]", shuffle_partitions=2,
                                     conf={"spark.sql.adaptive.coalescePartitions.enabled": "true",
                                           "spark.default.parallelism": "2"}))
    yield session
    session.stop()
