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


def passive_omp_wait() -> None:
    """Ask OpenMP to sleep rather than spin while a thread waits (``OMP_WAIT_POLICY=PASSIVE``,
    unless the environment already sets it). Takes effect only if torch is not imported yet.

    On a machine shared with other jobs, spinning threads of torch's OpenMP pool wait for a core
    that is busy elsewhere: measured with 2 threads on 2 cores at load average ~6, a training
    step ran 8x slower with the default (spinning) policy than with the passive one.
    """
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def train_embeddings(*args, **kwargs):
    """Train TwHIN embeddings; see :func:`graph.embed.train.train_embeddings`."""
    passive_omp_wait()
    from graph.embed.train import train_embeddings as _train

    return _train(*args, **kwargs)
