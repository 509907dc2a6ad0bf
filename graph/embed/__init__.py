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


def choose_omp_wait() -> str:
    """Choose how OpenMP threads wait for work, before torch loads (no effect once it has), unless
    the environment sets ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` already; returns the choice.

    * a quiet machine (1-minute load average below the cores this process may use): spin briefly,
      then sleep (``GOMP_SPINCOUNT=10000``);
    * a busy one: sleep at once (``OMP_WAIT_POLICY=PASSIVE``).

    A training step runs ~15 short parallel regions, alternately in torch's and numba's OpenMP
    pools (two libgomp copies, one thread each beside the main thread on 2 cores). Measured on the
    10M-edge benchmark graph, 2 cores:

    * the default policy spins ~300,000 times: at load average ~6 the spinning threads of one pool
      hold a core the other needs (a step 8x slower than with ``PASSIVE``);
    * ``PASSIVE`` on a quiet machine: every region starts by waking a thread (~0.5 ms of system
      time per 9 ms step); `coengage graph embed`, 1 epoch, alternated runs: 795-809k edges/s
      against 828-862k with the bounded spin;
    * the bounded spin at load ~6 (five busy processes beside it): 111k and 136k edges/s against
      142k and 152k with ``PASSIVE``.
    """
    import os

    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return "environment"
    try:
        cores = len(os.sched_getaffinity(0))
        busy = os.getloadavg()[0] >= cores
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        busy = False
    if busy:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        return "passive"
    os.environ["GOMP_SPINCOUNT"] = OMP_SPINCOUNT
    return "bounded spin"


def train_embeddings(*args, **kwargs):
    """Train TwHIN embeddings; see :func:`graph.embed.train.train_embeddings`."""
    choose_omp_wait()
    from graph.embed.train import train_embeddings as _train

    return _train(*args, **kwargs)
