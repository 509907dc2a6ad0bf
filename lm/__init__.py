"""lm/: train and evaluate a BERT-style encoder on mined tweet pairs.

Never imports dgl; runs on the pinned stack (torch 2.2.1, transformers 4.57) and on a
recent torch with transformers 5. Importing ``lm`` imports neither torch nor transformers.

Python API (``coengage lm train`` / ``lm eval`` as functions)::

    import lm
    model_dir = lm.train(pairs="pairs.parquet", texts="GRAPH_DIR", out="MODEL_DIR",
                         from_scratch="tiny", objective="infonce", max_steps=300)
    metrics = lm.evaluate("MODEL_DIR", graph="GRAPH_DIR", embeddings="EMB_DIR", out="metrics.json",
                          label_col="hashtag", seeds=3)
"""

from coengage.callable_module import callable_submodule

__all__ = ["train", "evaluate"]


def train(config=None, **options):
    """Train an encoder on mined pairs: ``coengage lm train`` as a function; returns MODEL_DIR.

    Either a ready :class:`lm.config.TrainConfig` or its fields as keywords, named like the CLI
    flags with underscores: ``pairs``, ``texts`` (GRAPH_DIR or a table), ``out``, ``model`` (a
    local Hugging Face masked LM) or ``from_scratch`` (``tiny``/``mini``/``small``/``base``),
    ``objective`` (``infonce``/``triplet``/``mlm``), ``max_steps``, ``batch_size``, ``lr``,
    ``seed``, ``resume``, ``overwrite``, ... (see ``coengage lm train --help``). Keywords given
    with ``config`` override its fields. Returns the MODEL_DIR path (``None`` when stopped early by
    ``max_steps_per_call``).

    >>> lm.train(pairs="/tmp/p.parquet", texts="/tmp/g", out="/tmp/m", from_scratch="tiny", max_steps=50)  # doctest: +SKIP
    """
    import dataclasses

    from lm.config import TrainConfig
    from lm.train import train as _train

    if config is not None:
        config = dataclasses.replace(config, **options)
    else:
        config = TrainConfig(**options)
    return _train(config)


def evaluate(model, graph, embeddings=None, out=None, *, pairs=None, features_cache=None, config=None, **options):
    """Evaluate frozen tweet embeddings of ``model`` on GRAPH_DIR's held-out split: ``coengage lm eval``
    as a function; returns the metrics dict (also written to ``out`` when given).

    ``model``: a MODEL_DIR, ``untrained:<dir>``, ``tfidf`` or ``random``. ``options``: fields of
    :class:`lm.eval.config.EvalConfig` (``tasks``, ``seeds``, ``label_col``, ``candidates``, ...).
    """
    import dataclasses

    from lm.eval.config import EvalConfig
    from lm.eval.run import evaluate as _evaluate

    cfg = dataclasses.replace(config, **options) if config is not None else EvalConfig(**options)
    return _evaluate(str(model), graph, embeddings, cfg, pairs=pairs, out=out, features_cache=features_cache)


callable_submodule("lm.train", train)
