"""graph/: engagement logs -> user-tweet graph artifact -> TwHIN embeddings.

Importing this package does not import dgl; only ``graph.dglgraph`` and the embedding
trainer do. mining/ and lm/ read the artifact through :mod:`graph.artifact`.

Python API (the CLI's commands as functions)::

    import graph
    g = graph.build("logs/*.parquet", texts="tweets.parquet", out="GRAPH_DIR", holdout=0.2)
    g = graph.load("GRAPH_DIR")                         # GraphArtifact
    from graph.embed import EmbedConfig, train_embeddings
    train_embeddings("GRAPH_DIR", "EMB_DIR", EmbedConfig(dim=64, epochs=5))
"""

from coengage.callable_module import callable_submodule
from graph.artifact import GraphArtifact, load

__all__ = ["GraphArtifact", "load", "build"]


def build(log=None, texts=None, out=None, *, config=None, **options) -> GraphArtifact:
    """Build a graph artifact (GRAPH_DIR) from engagement logs: ``coengage graph build`` as a function.

    ``log``/``texts``: a file, a glob or a list of them (CSV/TSV/Parquet/JSONL, optionally .gz).
    ``out``: GRAPH_DIR to write (atomically). ``options``: any field of
    :class:`graph.build.BuildConfig`, named like the CLI flags with underscores (``user_col``,
    ``item_col``, ``type_col``, ``time_col``, ``text_cols``, ``label_cols``, ``types``,
    ``holdout``, ``split_seed``, ``strict``, ``no_dgl``, ``overwrite``, ...). Alternatively pass a
    ready ``config=BuildConfig(...)`` (``options`` then override its fields). Returns the loaded
    :class:`GraphArtifact`.

    >>> g = graph.build("engagements.csv.gz", texts="posts.jsonl.gz", out="/tmp/g",
    ...                 user_col="user", item_col="post_id", text_cols="title,text", holdout=0.2)  # doctest: +SKIP
    """
    from graph.build import BuildConfig, build_graph

    from coengage.errors import InputError

    unknown = sorted(set(options) - set(BuildConfig.field_names()))
    if unknown:
        raise InputError(f"graph.build: unknown option(s) {', '.join(unknown)}; known: {', '.join(BuildConfig.field_names())}")
    cfg = config if config is not None else BuildConfig()
    given = {"log": log, "texts": texts, "out": str(out) if out is not None else None, **options}
    cfg = cfg.updated(**given)
    return build_graph(cfg)


callable_submodule("graph.build", build)
