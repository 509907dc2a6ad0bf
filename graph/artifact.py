"""The graph artifact (GRAPH_DIR): its layout, and a loader that does not import dgl.

Layout, schema version 1::

    GRAPH_DIR/
      manifest.json        kind "coengage.graph", schema_version, num_nodes {user, tweet},
                           num_edges {type: n} (forward relations), relations [types in etype
                           order], type_weights {type: w}, dropped {reason: n}, rows_read,
                           duplicates_merged, inputs [...], texts {...}, config, fingerprint
      user_ids.parquet     column user_id (string): row i is user node i
      tweet_ids.parquet    column tweet_id (string): row i is tweet node i
      csr/ut_*.npy         user -> tweet CSR over all relations, edges sorted by (user, tweet, etype):
                             ut_indptr int64 [U+1], ut_indices int32 [E] (tweet node ids),
                             ut_etype int8 [E] (index into relations), ut_time int64 [E]
                             (latest unix seconds of the deduplicated engagement), ut_count int32 [E]
                             (how many raw rows were merged into the edge)
      csr/tu_*.npy         the same edges as tweet -> user, sorted by (tweet, user, etype)
      texts.parquet        node int64 (tweet node id), tweet_id string, text string, plus the
                           texts table's other columns (labels such as topic or subreddit)
      graph.dgl            DGL heterograph: node types user, tweet; per engagement type T the
                           relations (user, T, tweet) and (tweet, rev_T, user); edata time, count, weight

One (user, tweet, type) triple is one edge. Relation r's own CSR is the edges with
``etype == r`` (:meth:`GraphArtifact.relation_csr`); the merged arrays are what random
walks and co-engagement counting read, memory-mapped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from coengage.artifacts import read_manifest, read_parquet
from coengage.errors import ArtifactError

KIND = "coengage.graph"
SCHEMA_VERSION = 1
DIRECTIONS = {"user_tweet": "ut", "tweet_user": "tu"}
CSR_FIELDS = ("indptr", "indices", "etype", "time", "count")


@dataclass(frozen=True)
class CSR:
    """Compressed sparse rows: the neighbours of row i are ``indices[indptr[i]:indptr[i+1]]``."""

    indptr: np.ndarray  # int64 [n_rows + 1]
    indices: np.ndarray  # int32 [n_edges]
    etype: np.ndarray  # int8  [n_edges]
    time: np.ndarray  # int64 [n_edges]
    count: np.ndarray  # int32 [n_edges]

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    @property
    def n_edges(self) -> int:
        return len(self.indices)

    def degrees(self) -> np.ndarray:
        return np.diff(self.indptr)


def csr_paths(directory: str | os.PathLike, direction: str) -> dict[str, Path]:
    prefix = DIRECTIONS[direction]
    return {f: Path(directory) / "csr" / f"{prefix}_{f}.npy" for f in CSR_FIELDS}


def save_csr(directory: str | os.PathLike, direction: str, csr: CSR) -> None:
    for field, path in csr_paths(directory, direction).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, getattr(csr, field))


class GraphArtifact:
    """A built graph directory. Cheap to open; arrays load lazily (memory-mapped by default)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.manifest = read_manifest(self.path, kind=KIND)
        version = self.manifest.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ArtifactError(
                f"{self.path}: graph schema version {version}, this coengage reads {SCHEMA_VERSION}; "
                "rebuild it with `coengage graph build`"
            )

    def __repr__(self) -> str:
        return f"GraphArtifact({str(self.path)!r}, users={self.num_users}, tweets={self.num_tweets}, edges={self.num_edges})"

    @property
    def fingerprint(self) -> str:
        return self.manifest["fingerprint"]

    @property
    def num_users(self) -> int:
        return int(self.manifest["num_nodes"]["user"])

    @property
    def num_tweets(self) -> int:
        return int(self.manifest["num_nodes"]["tweet"])

    @property
    def num_edges(self) -> int:
        return int(sum(self.manifest["num_edges"].values()))

    @property
    def relations(self) -> list[str]:
        """Engagement types in etype order: ``relations[etype]`` names an edge's type."""
        return list(self.manifest["relations"])

    @property
    def type_weights(self) -> np.ndarray:
        """float32 weight per etype, from the build config."""
        w = self.manifest["type_weights"]
        return np.asarray([w[r] for r in self.relations], dtype=np.float32)

    def csr(self, direction: str = "tweet_user", mmap: bool = True) -> CSR:
        """The merged CSR, ``direction`` 'tweet_user' (default) or 'user_tweet'."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {sorted(DIRECTIONS)}, got {direction!r}")
        arrays = {}
        for field, path in csr_paths(self.path, direction).items():
            if not path.exists():
                raise ArtifactError(f"{self.path}: missing {path.relative_to(self.path)}; the artifact is incomplete")
            arrays[field] = np.load(path, mmap_mode="r" if mmap else None)
        return CSR(**arrays)

    def relation_csr(self, relation: str, direction: str = "tweet_user") -> CSR:
        """The CSR of one engagement type (copied out of the merged arrays)."""
        if relation not in self.relations:
            raise ArtifactError(f"unknown relation {relation!r}; this graph has {self.relations}")
        full = self.csr(direction)
        r = self.relations.index(relation)
        keep = np.asarray(full.etype) == r
        rows = np.repeat(np.arange(full.n_rows, dtype=np.int64), full.degrees())[keep]
        indptr = np.zeros(full.n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=full.n_rows), out=indptr[1:])
        return CSR(indptr, np.asarray(full.indices)[keep], np.asarray(full.etype)[keep],
                   np.asarray(full.time)[keep], np.asarray(full.count)[keep])

    def _ids(self, name: str, column: str) -> np.ndarray:
        import pyarrow.parquet as pq

        return pq.read_table(self.path / name, columns=[column]).column(column).to_numpy(zero_copy_only=False)

    @cached_property
    def user_ids(self) -> np.ndarray:
        """Original user ids (object array of str); ``user_ids[i]`` is user node i."""
        return self._ids("user_ids.parquet", "user_id")

    @cached_property
    def tweet_ids(self) -> np.ndarray:
        """Original tweet ids (object array of str); ``tweet_ids[i]`` is tweet node i."""
        return self._ids("tweet_ids.parquet", "tweet_id")

    def tweet_index(self) -> "dict[str, int]":
        """Map original tweet id -> tweet node id."""
        return {t: i for i, t in enumerate(self.tweet_ids)}

    def texts(self, columns: list[str] | None = None):
        """The texts table as a pandas DataFrame (columns node, tweet_id, text, labels...)."""
        return read_parquet(self.path / "texts.parquet", columns=columns)

    def dgl_graph(self):
        """The DGL heterograph (imports dgl; not for mining/ or lm/)."""
        from graph.dglgraph import load_dgl

        return load_dgl(self.path)


def load(path: str | os.PathLike) -> GraphArtifact:
    """Open a graph artifact directory built by `coengage graph build`."""
    return GraphArtifact(path)


def check_fingerprint(expected: str, graph: GraphArtifact, what: str) -> None:
    """Refuse an artifact made from another graph, with a message that says what to do."""
    if expected != graph.fingerprint:
        raise ArtifactError(
            f"{what} was made from graph {expected}, but {graph.path} is graph {graph.fingerprint}; "
            f"rebuild {what} from this graph"
        )
