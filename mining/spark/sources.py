"""Edges for the Spark engine: from a graph artifact (this module) or raw logs (:mod:`mining.spark.logs`).

A graph artifact is a single-machine format (memory-mapped CSR arrays), so its edges are
written once as Parquet into a scratch directory that the executors can read
(``--spark-tmp``, a shared path on a cluster) and read back as ``(u, t, time)``.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

EDGE_CHUNK = 1 << 22  # edges per Parquet file written from the CSR


def scratch_dir(tmp_dir: str | os.PathLike | None, prefix: str) -> Path:
    """A new empty scratch directory under ``tmp_dir`` (default: the system temp dir)."""
    base = Path(tmp_dir) if tmp_dir else None
    if base is not None:
        base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


def graph_edges(spark, graph, scratch: Path):
    """The user -> tweet CSR of ``graph`` as a DataFrame ``(u long, t long, time long)``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ut = graph.csr("user_tweet")
    indptr = np.asarray(ut.indptr)
    n_edges = int(indptr[-1])
    out = scratch / "edges"
    out.mkdir(parents=True, exist_ok=True)
    n_files = 0
    for lo in range(0, max(n_edges, 1), EDGE_CHUNK):
        hi = min(lo + EDGE_CHUNK, n_edges)
        # the user of edge j is the row whose [indptr[u], indptr[u+1]) holds j
        users = np.searchsorted(indptr, np.arange(lo, hi, dtype=np.int64), side="right") - 1
        table = pa.table({"u": pa.array(users.astype(np.int64)),
                          "t": pa.array(np.asarray(ut.indices[lo:hi], dtype=np.int64)),
                          "time": pa.array(np.asarray(ut.time[lo:hi], dtype=np.int64))})
        pq.write_table(table, out / f"part-{n_files:05d}.parquet")
        n_files += 1
    log.info("graph %s: %d edges staged for Spark in %d file(s) under %s", graph.path, n_edges, n_files, out)
    return spark.read.schema("u long, t long, time long").parquet(str(out))


def texts_frame(spark, text_of: np.ndarray, scratch: Path):
    """Tweet texts by node id as a DataFrame ``(t long, text string)`` (tweets with a text only)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    nodes = np.array([i for i, t in enumerate(text_of) if isinstance(t, str) and t.strip() != ""], dtype=np.int64)
    out = scratch / "texts"
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"t": pa.array(nodes), "text": pa.array(list(text_of[nodes]), pa.string())}),
                   out / "part-00000.parquet")
    return spark.read.schema("t long, text string").parquet(str(out))


def collect_candidates(df, scratch: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bring a ``(a, b, score)`` DataFrame to the driver (via Parquet, not py4j): int64, int64, float64."""
    import pyarrow.parquet as pq

    out = scratch / "candidates"
    df.write.mode("overwrite").parquet(str(out))
    files = sorted(p for p in out.glob("*.parquet"))
    if not files:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
    table = pq.ParquetDataset([str(p) for p in files]).read(columns=["a", "b", "score"])
    a = table.column("a").to_numpy().astype(np.int64)
    b = table.column("b").to_numpy().astype(np.int64)
    s = table.column("score").to_numpy().astype(np.float64)
    order = np.lexsort((b, a))  # grouped by a, b ascending: a deterministic order
    return a[order], b[order], s[order]
