"""Lazy imports and clear errors of the Spark engine (no SparkSession needed)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from coengage.errors import InputError
from mining.spark.session import parse_conf, require_pyspark


def test_mining_spark_imports_neither_pyspark_nor_dgl():
    code = ("import sys, mining.cli, mining.spark.engine, mining.spark.coengage, mining.spark.logs, "
            "mining.spark.postprocess, graph.spark_stats, graph.stats_cli; "
            "print('pyspark' in sys.modules, 'dgl' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_missing_pyspark_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark -> ImportError
    with pytest.raises(InputError, match="--engine spark needs pyspark"):
        require_pyspark()


def test_missing_java_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(InputError, match="needs Java"):
        require_pyspark()


def test_spark_conf_parsing():
    assert parse_conf(["spark.executor.memory=8g", "a.b = c=d"]) == {"spark.executor.memory": "8g", "a.b": "c=d"}
    with pytest.raises(InputError, match="KEY=VALUE"):
        parse_conf(["nonsense"])
