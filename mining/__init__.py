"""mining/: the graph artifact -> positive tweet pairs (random walks, co-engagement, kNN).

Never imports dgl: it memory-maps the CSR arrays of the graph artifact.

Python API (``coengage mine`` as a function)::

    import mining
    result = mining.mine("GRAPH_DIR", method="walk", out="pairs.parquet", top_k=20, seed=0)
    result.counts, result.manifest          # what was kept and dropped, the pair file's manifest
"""

from coengage.callable_module import callable_submodule

__all__ = ["mine"]


def mine(graph_dir, method: str = "walk", out=None, **options):
    """Mine positive tweet pairs from GRAPH_DIR: ``coengage mine`` as a function.

    ``method``: ``walk`` (Pixie-style random walks), ``coengage`` (exact co-engagement counts) or
    ``knn`` (nearest graph embeddings; pass ``embeddings=EMB_DIR``). ``out``: the pair file to
    write (parquet/tsv/jsonl by name; its manifest goes to ``OUT.manifest.json``); ``None``
    writes nothing. ``options``: fields of the method's config (:class:`mining.mine.WalkConfig`,
    :class:`~mining.mine.CoengageConfig`, :class:`~mining.mine.KnnConfig`) and of
    :class:`mining.postprocess.PostprocessConfig`, plus ``fmt``, ``with_text``, ``strict`` and
    ``progress``. Returns a :class:`mining.mine.MineResult` (pair node ids, scores, manifest).

    >>> r = mining.mine("/tmp/g", method="coengage", out="/tmp/p.parquet", window_s=1800)  # doctest: +SKIP
    """
    from mining.mine import mine as _mine

    return _mine(graph_dir, method, out, **options)


callable_submodule("mining.mine", mine)
