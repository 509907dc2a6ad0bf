"""graph/: engagement logs -> user-tweet graph artifact -> TwHIN embeddings.

Importing this package does not import dgl; only ``graph.dglgraph`` and the embedding
trainer do. mining/ and lm/ read the artifact through :mod:`graph.artifact`.
"""

from graph.artifact import GraphArtifact, load

__all__ = ["GraphArtifact", "load", "build"]


def build(*args, **kwargs):
    """Build a graph artifact; see :func:`graph.build.build_graph` (the API of `coengage graph build`)."""
    from graph.build import build_graph

    return build_graph(*args, **kwargs)
