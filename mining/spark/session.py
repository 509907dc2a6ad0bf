"""A SparkSession for the Spark engine: the one spark-submit made, or a local one.

pyspark is imported lazily (only with ``--engine spark``); a missing pyspark or Java is an
:class:`~coengage.errors.InputError` that says what to install.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from dataclasses import dataclass, field

from coengage.errors import InputError

log = logging.getLogger(__name__)

# defaults for a local session (a cluster's own settings win: see get_spark)
LOCAL_DEFAULTS = {
    "spark.ui.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.adaptive.enabled": "true",
    "spark.driver.memory": "2g",
    "spark.ui.showConsoleProgress": "false",
}


@dataclass
class SparkOptions:
    """How to reach Spark and where the engine may write scratch data."""

    master: str | None = None  # e.g. local[4], spark://host:7077, yarn; None: from spark-submit, else local[*]
    conf: dict = field(default_factory=dict)  # extra Spark settings (--spark-conf key=value)
    tmp_dir: str | None = None  # scratch directory readable by every executor (graph input, candidates)
    output: str = "single"  # single: one pair file via the local writer; partitioned: a directory of part files
    salt: int = 1  # salt buckets for the per-tweet top-k (heavy tweets); 1 = no salting
    shuffle_partitions: int | None = None  # spark.sql.shuffle.partitions

    def to_dict(self) -> dict:
        return {"master": self.master, "conf": dict(self.conf), "output": self.output, "salt": self.salt,
                "shuffle_partitions": self.shuffle_partitions}


def parse_conf(items) -> dict:
    """``["k=v", ...]`` -> dict, with a clear error for an item without '='."""
    out = {}
    for item in items or []:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise InputError(f"--spark-conf expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def require_pyspark():
    """Import pyspark, or raise an InputError explaining what is missing."""
    try:
        import pyspark  # noqa: F401
    except ImportError as e:
        raise InputError("--engine spark needs pyspark (pip install 'pyspark>=3.5'); "
                         f"it is not importable here ({e})") from None
    if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
        raise InputError("--engine spark needs Java (17 or 11) for Spark: no `java` on PATH and JAVA_HOME is not set")
    import pyspark

    return pyspark


def get_spark(options: SparkOptions | None = None):
    """The active SparkSession (spark-submit, a notebook), or a new one.

    Without ``options.master`` a session started by spark-submit (or already active) is reused as
    is; outside spark-submit a local session ``local[*]`` is started. Local sessions get
    :data:`LOCAL_DEFAULTS` (UI off, UTC) under the user's ``conf``.
    """
    options = options or SparkOptions()
    require_pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and options.master is None:
        _apply_runtime_conf(active, options)
        return active
    master = options.master
    under_submit = "PYSPARK_GATEWAY_PORT" in os.environ
    if master is None and not under_submit:
        master = "local[*]"
    builder = SparkSession.builder.appName("coengage")
    conf = {}
    if master is not None:
        builder = builder.master(master)
        if master.startswith("local"):
            conf.update(LOCAL_DEFAULTS)
            # the default 200 shuffle partitions cost more than they bring on one machine
            conf["spark.sql.shuffle.partitions"] = str(max(4, 2 * (os.cpu_count() or 2)))
            # Python workers must run this interpreter (the one with numpy/pyarrow/coengage)
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    conf.update(options.conf)
    if options.shuffle_partitions:
        conf["spark.sql.shuffle.partitions"] = str(options.shuffle_partitions)
    for k, v in conf.items():
        builder = builder.config(k, v)
    try:
        spark = builder.getOrCreate()
    except Exception as e:  # py4j/Java start-up problems
        raise InputError(f"cannot start Spark (master {master or 'from spark-submit'}): {e}") from None
    if master is not None and master.startswith("local"):
        spark.sparkContext.setLogLevel("ERROR")
    _apply_runtime_conf(spark, options)
    log.info("Spark %s, master %s", spark.version, spark.sparkContext.master)
    return spark


def _apply_runtime_conf(spark, options: SparkOptions) -> None:
    """Settings that may change on a running session (SQL confs)."""
    if options.shuffle_partitions:
        spark.conf.set("spark.sql.shuffle.partitions", str(options.shuffle_partitions))
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    for k, v in options.conf.items():
        if k.startswith("spark.sql."):
            spark.conf.set(k, v)
