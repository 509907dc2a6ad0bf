"""EMB_DIR on disk: write it atomically, read it back checked. numpy + json only (no dgl, no torch),
so mining/ and lm/ may import this module.

Layout, schema version 1::

    EMB_DIR/
      user.npy       float32 [num_users, dim]   row i = user node i of the graph
      tweet.npy      float32 [num_tweets, dim]  row i = tweet node i of the graph
      relation.npy   float32 [num_relations, dim], row r = relations[r] of the graph
      manifest.json  kind "coengage.embeddings", schema_version, graph_fingerprint, dim,
                     relations, num_nodes, config, metrics {mrr, hits@1, hits@10, hits@50,
                     per_relation {...}}, history [per-epoch metrics], timing, fingerprint
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from coengage.artifacts import atomic_dir, combine_fingerprints, file_fingerprint, now_iso, read_manifest, write_json
from coengage.errors import ArtifactError

KIND = "coengage.embeddings"
SCHEMA_VERSION = 1
TABLES = ("user", "tweet", "relation")


@dataclass
class Embeddings:
    """A loaded EMB_DIR. ``user[i]``/``tweet[i]`` are graph node i; ``relation[r]`` is relations[r]."""

    path: Path
    user: np.ndarray
    tweet: np.ndarray
    relation: np.ndarray
    manifest: dict

    @property
    def dim(self) -> int:
        return int(self.manifest["dim"])

    @property
    def graph_fingerprint(self) -> str:
        return self.manifest["graph_fingerprint"]

    @property
    def relations(self) -> list[str]:
        return list(self.manifest["relations"])

    @property
    def metrics(self) -> dict:
        return dict(self.manifest.get("metrics", {}))


def write_embeddings(out: str | os.PathLike, *, user: np.ndarray, tweet: np.ndarray, relation: np.ndarray,
                     graph_fingerprint: str, relations: list[str], config: dict, metrics: dict,
                     history: list | None = None, timing: dict | None = None, extra: dict | None = None) -> Path:
    """Write EMB_DIR atomically (a crash leaves the old directory or none)."""
    arrays = {"user": user, "tweet": tweet, "relation": relation}
    dims = {name: a.shape[1] for name, a in arrays.items()}
    if len(set(dims.values())) != 1:
        raise ValueError(f"tables have different widths: {dims}")
    if relation.shape[0] != len(relations):
        raise ValueError(f"{relation.shape[0]} relation vectors for {len(relations)} relations")
    out = Path(out)
    with atomic_dir(out) as tmp:
        prints = []
        for name, a in arrays.items():
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(a, dtype=np.float32))
            prints.append(file_fingerprint(tmp / f"{name}.npy", full=True))
        manifest = {
            "kind": KIND,
            "schema_version": SCHEMA_VERSION,
            "created": now_iso(),
            "graph_fingerprint": graph_fingerprint,
            "dim": int(user.shape[1]),
            "relations": list(relations),
            "num_nodes": {"user": int(user.shape[0]), "tweet": int(tweet.shape[0])},
            "config": config,
            "metrics": metrics,
            "history": list(history or []),
            "timing": dict(timing or {}),
            "fingerprint": combine_fingerprints(graph_fingerprint, config, *prints),
        }
        manifest.update(extra or {})
        write_json(tmp / "manifest.json", manifest)
    return out


def _graph_fingerprint_of(graph) -> tuple[str, str]:
    """(fingerprint, description) of a GraphArtifact, a graph directory, or a fingerprint string."""
    from graph.artifact import GraphArtifact, load

    if isinstance(graph, GraphArtifact):
        return graph.fingerprint, str(graph.path)
    if isinstance(graph, (os.PathLike, Path)) or (isinstance(graph, str) and Path(graph).is_dir()):
        g = load(graph)
        return g.fingerprint, str(g.path)
    if isinstance(graph, str):
        return graph, f"graph {graph}"
    raise TypeError(f"graph must be a GraphArtifact, a graph directory or a fingerprint string, got {type(graph).__name__}")


def load_embeddings(emb_dir: str | os.PathLike, graph=None, mmap: bool = False) -> Embeddings:
    """Open EMB_DIR written by `coengage graph embed`.

    ``graph`` (a :class:`graph.artifact.GraphArtifact`, a GRAPH_DIR path, or a graph
    fingerprint) is the graph the caller will use with these embeddings: an EMB_DIR trained on
    another graph is refused with an :class:`~coengage.errors.ArtifactError` saying so.
    """
    emb_dir = Path(emb_dir)
    manifest = read_manifest(emb_dir, kind=KIND)
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise ArtifactError(f"{emb_dir}: embeddings schema version {manifest.get('schema_version')}, this coengage reads "
                            f"{SCHEMA_VERSION}; re-run `coengage graph embed`")
    if graph is not None:
        expected, where = _graph_fingerprint_of(graph)
        if manifest.get("graph_fingerprint") != expected:
            raise ArtifactError(
                f"{emb_dir} holds embeddings of graph {manifest.get('graph_fingerprint')}, but {where} is graph {expected}; "
                f"re-run `coengage graph embed {where if where != f'graph {expected}' else 'GRAPH_DIR'} --out {emb_dir}` for this graph"
            )
    tables = {}
    for name in TABLES:
        path = emb_dir / f"{name}.npy"
        if not path.exists():
            raise ArtifactError(f"{emb_dir}: missing {name}.npy; the embeddings directory is incomplete")
        a = np.load(path, mmap_mode="r" if mmap else None)
        if a.ndim != 2 or a.dtype != np.float32 or a.shape[1] != manifest["dim"]:
            raise ArtifactError(f"{path}: expected float32 [n, {manifest['dim']}], found {a.dtype} {list(a.shape)}")
        tables[name] = a
    nn = manifest.get("num_nodes", {})
    for name in ("user", "tweet"):
        if name in nn and tables[name].shape[0] != nn[name]:
            raise ArtifactError(f"{emb_dir}/{name}.npy has {tables[name].shape[0]} rows, the manifest says {nn[name]}")
    return Embeddings(emb_dir, tables["user"], tables["tweet"], tables["relation"], manifest)
