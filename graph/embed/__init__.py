"""TwHIN embeddings of the user-tweet graph (`coengage graph embed`).

Modules, one concern each:

* :mod:`graph.embed.config`     -- :class:`EmbedConfig`, validated, every field explained
* :mod:`graph.embed.data`       -- training edges from the DGL heterograph; the held-out split
* :mod:`graph.embed.negatives`  -- shared negatives per chunk, uniform and degree-proportional
* :mod:`graph.embed.model`      -- the translation score f(u, t, r) = (u + r)^T t and the logistic loss
* :mod:`graph.embed.train`      -- the training loop (DGL NodeEmbedding + SparseAdagrad), checkpoints, resume
* :mod:`graph.embed.sparse_adagrad` -- per-batch row grouping; the fused (numba) SparseAdagrad step (DGL's update, correctly rounded square root)
* :mod:`graph.embed.kernels`    -- numba passes of the training step around its matrix products
* :mod:`graph.embed.tables`     -- node tables and optimiser state on transparent huge pages
* :mod:`graph.embed.evaluation` -- link-prediction MRR / HITS@k, nearest-neighbour label agreement
* :mod:`graph.embed.io`         -- EMB_DIR on disk; :func:`load_embeddings` (numpy only)

Importing this package imports neither dgl nor torch: mining/ and lm/ may call
:func:`load_embeddings`. The trainer is imported on first use of :func:`train_embeddings`.
"""

from graph.embed.config import EmbedConfig
from graph.embed.io import Embeddings, load_embeddings

__all__ = ["EmbedConfig", "Embeddings", "load_embeddings", "train_embeddings"]


OMP_SPINCOUNT = "10000"


def bounded_omp_wait() -> None:
    """Let OpenMP threads spin only briefly before they sleep while waiting for work
    (``GOMP_SPINCOUNT=10000``), unless the environment already sets ``OMP_WAIT_POLICY`` or
    ``GOMP_SPINCOUNT``. Takes effect only if torch is not imported yet.

    A training step runs ~15 short parallel regions, alternately in torch's and numba's OpenMP
    pools (two libgomp copies, one thread each beside the main thread on 2 cores):

    * the default policy spins ~300,000 times: on a machine shared with other jobs the spinning
      threads of one pool hold a core the other needs (measured earlier, 2 threads on 2 cores at
      load average ~6: a step 8x slower than with ``OMP_WAIT_POLICY=PASSIVE``);
    * ``PASSIVE`` sleeps at once, so every region starts by waking a thread (~0.5 ms of system
      time per 9 ms step): measured on the 10M-edge benchmark graph, 4 alternated runs each,
      rowwise 10.1-11.3 ms per step against 8.6-10.0 ms with a bounded spin of 10,000.
    """
    import os

    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ.setdefault("GOMP_SPINCOUNT", OMP_SPINCOUNT)


def train_embeddings(*args, **kwargs):
    """Train TwHIN embeddings; see :func:`graph.embed.train.train_embeddings`."""
    bounded_omp_wait()
    from graph.embed.train import train_embeddings as _train

    return _train(*args, **kwargs)
