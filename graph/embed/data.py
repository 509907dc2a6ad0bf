"""Training edges of the embedding: read from the graph's DGL heterograph, split off a held-out set.

Each (user, type, tweet) relation of the heterograph contributes its edges; an edge carries its
relation index (position in the graph's ``relations``) and that relation's type weight from the
build config, which weights the edge's positive term in the loss.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from coengage.errors import ArtifactError
from graph.artifact import GraphArtifact
from graph.embed.kernels import pack_edges, select_edges

log = logging.getLogger(__name__)


@dataclass
class EdgeSet:
    """Parallel arrays, one entry per (user, tweet, relation) edge."""

    users: np.ndarray  # int64 [E]
    tweets: np.ndarray  # int64 [E]
    rels: np.ndarray  # int64 [E] index into the graph's relations
    weights: np.ndarray  # float32 [E] the relation's type weight

    def __len__(self) -> int:
        return len(self.users)

    def take(self, index: np.ndarray) -> "EdgeSet":
        return EdgeSet(self.users[index], self.tweets[index], self.rels[index], self.weights[index])


class PackedEdges:
    """Training edges packed one row per edge, ``[E, 4]`` int32: user, tweet, relation and the
    weight's float32 bits. A batch picks edges at random positions of arrays far larger than the
    caches; packed, each pick costs one cache line instead of one per array (measured, 8,192 picks
    out of 10M edges: 0.07 ms instead of 0.35 ms for four ``index_select``s).

    ``users`` / ``tweets`` are int32 column views (no copy). Node ids must fit int32: a table of
    2^31 rows would take a terabyte at d = 128, so no graph that trains here is refused."""

    def __init__(self, e: EdgeSet, positions: np.ndarray | None = None):
        """The edges of ``e`` at ``positions`` (all of them when None), packed in that order: the
        same rows as ``PackedEdges(e.take(positions))`` without that intermediate copy (28 bytes
        per edge of fresh memory; at 97M edges 3.8 s of this VM's page faults with the packing)."""
        for name, a in (("user", e.users), ("tweet", e.tweets), ("relation", e.rels)):
            if len(a) and (a.min() < 0 or a.max() > np.iinfo(np.int32).max):
                raise ArtifactError(f"{name} ids outside [0, 2^31) in the training edges: {a.min()}..{a.max()}")
        if positions is None:
            n, positions = len(e), np.empty(0, np.int64)
        else:
            positions = np.ascontiguousarray(positions, dtype=np.int64)
            n = len(positions)
        self.rows = np.empty((n, 4), dtype=np.int32)
        pack_edges(e.users, e.tweets, e.rels, np.ascontiguousarray(e.weights, dtype=np.float32).view(np.int32), positions,
                   self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def users(self) -> np.ndarray:
        return self.rows[:, 0]

    @property
    def tweets(self) -> np.ndarray:
        return self.rows[:, 1]

    def select(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(users, tweets, rels, weights)`` of the edges at positions ``idx``: int64, int64, int64, float32."""
        n = len(idx)
        bu, bt, br, bw = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.float32)
        select_edges(self.rows, self.rows.view(np.float32), np.ascontiguousarray(idx, dtype=np.int64), bu, bt, br, bw)
        return bu, bt, br, bw


def load_heterograph(graph: GraphArtifact):
    """The graph's DGL heterograph (``graph.dgl``, via :meth:`GraphArtifact.dgl_graph`)."""
    try:
        return graph.dgl_graph()
    except ModuleNotFoundError as e:  # graph.dglgraph not in this checkout: read the file directly
        if e.name != "graph.dglgraph":
            raise
        import dgl

        if not (graph.path / "graph.dgl").exists():
            raise ArtifactError(f"{graph.path}: missing graph.dgl; rebuild the graph with `coengage graph build`") from e
        return dgl.load_graphs(str(graph.path / "graph.dgl"))[0][0]


def graph_edges(graph: GraphArtifact) -> EdgeSet:
    """All user->tweet edges of the heterograph, relation by relation in the graph's relation order."""
    g = load_heterograph(graph)
    weights = graph.type_weights
    etypes = [("user", name, "tweet") for name in graph.relations]
    for etype in etypes:
        if etype not in g.canonical_etypes:
            raise ArtifactError(f"{graph.path}/graph.dgl has no relation {etype}; it does not match the manifest, rebuild the graph")
    if g.num_nodes("user") != graph.num_users or g.num_nodes("tweet") != graph.num_tweets:
        raise ArtifactError(f"{graph.path}/graph.dgl has {g.num_nodes('user')} users and {g.num_nodes('tweet')} tweets, the manifest "
                            f"{graph.num_users} and {graph.num_tweets}; rebuild the graph")
    # filled relation by relation in place: per-relation copies and a concatenation made ~2x the
    # 28 bytes per edge of fresh memory (6.3 s of page faults for the concatenation alone at 97M edges)
    n = sum(int(g.num_edges(etype)) for etype in etypes)
    edges = EdgeSet(np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.float32))
    o = 0
    for r, etype in enumerate(etypes):
        u, t = g.edges(etype=etype, order="eid")
        k = len(u)
        edges.users[o:o + k] = u.numpy()
        edges.tweets[o:o + k] = t.numpy()
        edges.rels[o:o + k] = r
        edges.weights[o:o + k] = weights[r]
        o += k
    log.info("%d edges over %d relations from %s", len(edges), len(graph.relations), graph.path)
    return edges


def split_edges(n: int, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of edge positions into (train, held-out), each sorted; ``round(holdout * n)`` held out."""
    n_test = int(round(holdout * n))
    if n_test >= n:
        raise ArtifactError(f"holdout {holdout} leaves no training edges out of {n}")
    perm = np.random.default_rng(np.random.SeedSequence([seed, 0x5E1])).permutation(n)
    held = np.sort(perm[:n_test])
    keep = np.ones(n, dtype=bool)
    keep[held] = False
    return np.flatnonzero(keep), held  # = np.sort(perm[n_test:]) without sorting 99 % of n (0.7 s at 10M)
