"""Load the DGL heterograph of a graph artifact (this module imports dgl; mining/ and lm/ must not)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from coengage.errors import ArtifactError
from graph.artifact import GraphArtifact

log = logging.getLogger(__name__)


def load_dgl(path: "str | os.PathLike | GraphArtifact", rebuild_if_missing: bool = True):
    """The heterograph of ``GRAPH_DIR/graph.dgl``.

    The file stores only the forward relations (int32 ids, COO, ``time`` and ``count``); the
    reverse relations and the ``weight`` edge data are added here, and ids are int64.

    Node types ``user`` and ``tweet``; per engagement type T the relations (user, T, tweet)
    and (tweet, rev_T, user), each with edge data ``time`` (int64 unix seconds), ``count``
    (int32 raw rows merged) and ``weight`` (float32 type weight). When the artifact was
    built with ``--no-dgl`` the same graph is rebuilt from the CSR arrays (unless
    ``rebuild_if_missing`` is False, then it is an :class:`ArtifactError`).
    """
    import dgl
    import torch

    from graph.writer import make_dgl_graph, with_reverse_and_weights

    artifact = path if isinstance(path, GraphArtifact) else GraphArtifact(path)
    file = Path(artifact.path) / "graph.dgl"
    if file.exists():
        try:
            graphs, _ = dgl.load_graphs(str(file))
        except Exception as e:  # dgl raises DGLError / RuntimeError on a corrupt file
            raise ArtifactError(f"{file}: cannot load the DGL graph ({e}); rebuild with `coengage graph build`") from e
        saved = graphs[0]
        if any(et.startswith("rev_") for et in saved.etypes):  # a file written with the reverse relations
            return saved
        missing = [r for r in artifact.relations if r not in saved.etypes]
        if missing:
            raise ArtifactError(f"{file}: no relation(s) {missing} of the manifest; rebuild with `coengage graph build`")
        weights = dict(zip(artifact.relations, artifact.type_weights.tolist()))
        return with_reverse_and_weights(saved, artifact.relations, weights, idtype=torch.int64)
    if not rebuild_if_missing:
        raise ArtifactError(f"{artifact.path}: no graph.dgl (built with --no-dgl); rebuild without --no-dgl")
    log.info("%s has no graph.dgl; building the DGL graph from the CSR arrays", artifact.path)
    weights = dict(zip(artifact.relations, artifact.type_weights.tolist()))
    return make_dgl_graph(artifact.csr("user_tweet"), artifact.relations, weights, artifact.num_users, artifact.num_tweets)
