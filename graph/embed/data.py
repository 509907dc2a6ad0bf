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
    users, tweets, rels, w = [], [], [], []
    for r, name in enumerate(graph.relations):
        etype = ("user", name, "tweet")
        if etype not in g.canonical_etypes:
            raise ArtifactError(f"{graph.path}/graph.dgl has no relation {etype}; it does not match the manifest, rebuild the graph")
        u, t = g.edges(etype=etype, order="eid")
        users.append(u.numpy().astype(np.int64))
        tweets.append(t.numpy().astype(np.int64))
        rels.append(np.full(len(u), r, dtype=np.int64))
        w.append(np.full(len(u), weights[r], dtype=np.float32))
    if g.num_nodes("user") != graph.num_users or g.num_nodes("tweet") != graph.num_tweets:
        raise ArtifactError(f"{graph.path}/graph.dgl has {g.num_nodes('user')} users and {g.num_nodes('tweet')} tweets, the manifest "
                            f"{graph.num_users} and {graph.num_tweets}; rebuild the graph")
    edges = EdgeSet(np.concatenate(users), np.concatenate(tweets), np.concatenate(rels), np.concatenate(w))
    log.info("%d edges over %d relations from %s", len(edges), len(graph.relations), graph.path)
    return edges


def split_edges(n: int, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of edge positions into (train, held-out), each sorted; ``round(holdout * n)`` held out."""
    n_test = int(round(holdout * n))
    if n_test >= n:
        raise ArtifactError(f"holdout {holdout} leaves no training edges out of {n}")
    perm = np.random.default_rng(np.random.SeedSequence([seed, 0x5E1])).permutation(n)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])
