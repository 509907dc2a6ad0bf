"""Training loop of `coengage graph embed`: DGL sparse node tables, shared negatives, checkpoints.

* user and tweet tables are ``dgl.nn.NodeEmbedding`` trained with ``dgl.optim.SparseAdagrad``
  (only the rows a batch touched are read and updated; DGL averages the gradients of a row that
  occurs several times in a batch); relation vectors are a dense parameter with Adagrad
  (:class:`DenseAdagrad`, ``torch.optim.Adagrad``'s update);
* each batch is cut into chunks whose positives share negatives (:mod:`graph.embed.negatives`),
  so the loss is a few batched matrix products (:mod:`graph.embed.model`);
* epoch e draws its edge order and negatives from a generator seeded by (seed, e) alone, so a run
  resumed from the checkpoint after epoch e continues exactly as an uninterrupted run would;
* after every epoch the held-out edges are ranked (:mod:`graph.embed.evaluation`) and a checkpoint
  is written to ``<EMB_DIR>.checkpoint``, into one of two slots in turn, so the previous one stays
  complete (:func:`_save_checkpoint`); the final EMB_DIR is written atomically and the checkpoint
  removed.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from coengage.artifacts import atomic_dir, check_output, read_manifest, write_json
from coengage.errors import ArtifactError
from graph.artifact import GraphArtifact, load
from graph.embed import kernels, model
from graph.embed.config import EmbedConfig
from graph.embed.data import EdgeSet, PackedEdges, graph_edges, split_edges
from graph.embed.evaluation import TranslationScorer, link_prediction_metrics, link_prediction_ranks
from graph.embed.io import write_embeddings
from graph.embed.negatives import NegativeSampler
from graph.embed.sparse_adagrad import RowGrouper, fused_adagrad_, group_occurrences, group_two
from graph.embed.tables import zeros_table

log = logging.getLogger(__name__)

CHECKPOINT_KIND = "coengage.embeddings.checkpoint"
ADAGRAD_EPS = 1e-10  # DGL SparseAdagrad's default eps, used by both optimiser paths
_names = itertools.count()


def checkpoint_dir(out: str | os.PathLike) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".checkpoint")


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@functools.cache
def native_bf16() -> bool:
    """Whether this CPU has native bfloat16 dot products (AVX512_BF16 or AMX-BF16; Linux only)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:  # pragma: no cover - not Linux
        pass
    return False


def matmul_dtype(config: EmbedConfig) -> torch.dtype:
    """The products' dtype for ``config.matmul_precision`` ('auto': bfloat16 where the CPU has native
    bfloat16 dot products; elsewhere oneDNN emulates them, expected slower than float32)."""
    name = config.matmul_precision
    if name == "auto":
        name = "bfloat16" if native_bf16() else "float32"
    elif name == "bfloat16" and not native_bf16():
        log.warning("--matmul-precision bfloat16 on a CPU without native bfloat16 dot products (AVX512_BF16/AMX): "
                    "they are emulated, which is expected to be slower than float32")
    return getattr(torch, name)


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)[0]) >> 1


_INIT_ROWS = 1 << 16  # rows drawn per block when a table is initialised


def _normal_rows(rng: np.random.Generator, out: np.ndarray, std: float) -> None:
    """``out[:] = (rng.standard_normal(out.shape) * std).astype(float32)``, bit for bit, in blocks
    of rows: the generator's stream does not depend on how the draws are split, and the float64
    temporaries stay ~64 MB instead of twice the table in float64 (on the 1M x 128 tweet table of
    the benchmark: 3 GB of fresh memory, ~3 s of this VM's page faults, and the run's peak RSS)."""
    for a in range(0, len(out), _INIT_ROWS):
        block = rng.standard_normal((min(len(out), a + _INIT_ROWS) - a, out.shape[1]))
        block *= std
        out[a:a + len(block)] = block


def _node_embedding(num: int, dim: int, kind: str, rng: np.random.Generator, std: float):
    import dgl

    name = f"coengage_{kind}_{os.getpid()}_{next(_names)}"

    def init_func(t):  # DGL keeps the returned tensor: the table lives on huge pages (graph.embed.tables)
        table = zeros_table(num, dim)
        _normal_rows(rng, table.numpy(), std)
        return table

    return dgl.nn.NodeEmbedding(num, dim, name, init_func=init_func)


class DenseAdagrad:
    """``torch.optim.Adagrad``'s update (no lr decay, no weight decay, eps 1e-10) of the relation
    vectors, the same operations in the same order, without the optimiser's machinery (which
    took ~0.3 ms a step for a [relations, d] tensor, ~2 % of a training step)."""

    def __init__(self, param: torch.Tensor, lr: float, eps: float = 1e-10):
        self.param, self.lr, self.eps, self.steps = param, lr, eps, 0
        self.sum = torch.zeros_like(param)

    @torch.no_grad()
    def step(self, grad: torch.Tensor) -> None:
        self.steps += 1
        self.sum.addcmul_(grad, grad, value=1)
        self.param.addcdiv_(grad, self.sum.sqrt().add_(self.eps), value=-self.lr)


class TwHINModel:
    """The trainable state: two NodeEmbedding tables, relation vectors and their optimisers."""

    def __init__(self, num_users: int, num_tweets: int, num_relations: int, config: EmbedConfig):
        import dgl

        self.config = config
        d = config.dim
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0x1717]))
        std = config.init_scale / np.sqrt(d)
        self.user = _node_embedding(num_users, d, "user", rng, std)  # users' draws first, then tweets'
        self.tweet = _node_embedding(num_tweets, d, "tweet", rng, std)
        self.relation = torch.nn.Parameter(torch.zeros(num_relations, d))
        self.sparse_opt = dgl.optim.SparseAdagrad([self.user, self.tweet], lr=config.lr, eps=ADAGRAD_EPS)
        for emb in (self.user, self.tweet):  # DGL's state layout (one [N, d] sum of squares), on huge pages
            rows, dim = emb.weight.shape  # row-wise Adagrad: one accumulator per row, [N]
            emb.set_optm_state((zeros_table(rows, dim) if config.optimizer != "rowwise" else torch.zeros(rows),))
        self.dense_opt = DenseAdagrad(self.relation, lr=config.relation_lr)
        self.user_rows, self.tweet_rows = RowGrouper(num_users), RowGrouper(num_tweets)  # the fused step's grouping
        self.matmul_dtype = matmul_dtype(config)

    def arrays(self, copy: bool = True) -> dict[str, np.ndarray]:
        """The user, tweet and relation tables; ``copy=False``: views of the live tables (for
        writing them out, where a copy would only cost fresh memory)."""
        a = {"user": self.user.weight.numpy(), "tweet": self.tweet.weight.numpy(), "relation": self.relation.detach().numpy()}
        return {k: v.copy() for k, v in a.items()} if copy else a

    def scorer(self) -> TranslationScorer:
        return TranslationScorer(self.user.weight.numpy(), self.tweet.weight.numpy(), self.relation.detach().numpy())

    def state(self, copy: bool = True) -> dict[str, np.ndarray]:
        """Everything a resumed run needs, as arrays (``copy=False``: views of the live ones, as
        :meth:`arrays`; the checkpoint writes those -- copying 1.5 GB of tables and Adagrad state
        took 3.3 s of its 6.7 s on the benchmark graph)."""
        s = {**self.arrays(copy=False), "user_adagrad": self.user.optm_state[0].numpy(),
             "tweet_adagrad": self.tweet.optm_state[0].numpy(), "relation_adagrad": self.dense_opt.sum.numpy()}
        if copy:
            s = {k: v.copy() for k, v in s.items()}
        s["relation_steps"] = np.asarray([float(self.dense_opt.steps)])
        return s

    def load_state(self, s: dict[str, np.ndarray]) -> None:
        with torch.no_grad():
            self.user.weight.copy_(torch.from_numpy(s["user"]))
            self.tweet.weight.copy_(torch.from_numpy(s["tweet"]))
            self.user.optm_state[0].copy_(torch.from_numpy(s["user_adagrad"]))
            self.tweet.optm_state[0].copy_(torch.from_numpy(s["tweet_adagrad"]))
            self.relation.copy_(torch.from_numpy(s["relation"]))
            self.dense_opt.sum.copy_(torch.from_numpy(s["relation_adagrad"]))
        self.dense_opt.steps = int(s["relation_steps"][0])

    def train_batch(self, e: PackedEdges, idx: torch.Tensor, sampler: NegativeSampler, gen: torch.Generator) -> float:
        """One optimiser step on the training edges at positions ``idx``; returns the mean loss.

        Per table, the ids of the positives and of the chunks' shared negatives are grouped once
        (:func:`graph.embed.sparse_adagrad.group_occurrences`: distinct rows, and each row's
        occurrences in order) and each distinct row is read once. The rows are gathered straight
        into the stacked operands of :func:`graph.embed.model.stacked_loss_and_grads` (three batched
        matrix products for both corruptions, forward and backward, gradients in closed form).
        A row's gradient is the mean over its occurrences -- what DGL's SparseAdagrad forms when
        handed one trace entry per occurrence -- so :meth:`train_batch_autograd` takes the same step
        (tested). The node tables are then updated by

        * ``optimizer="fused"``: :func:`graph.embed.sparse_adagrad.fused_adagrad_`, one parallel pass
          over the distinct rows (grouped by :class:`graph.embed.sparse_adagrad.RowGrouper`, operands
          gathered by :func:`graph.embed.kernels.gather_operands`) on the NodeEmbeddings' weights and
          DGL's Adagrad state (tested equal to DGL's step up to the square root's last bit),
        * ``optimizer="rowwise"``: the same pass with PyTorch-BigGraph's row-wise Adagrad (a [N] state;
          tested against :func:`graph.embed.sparse_adagrad.rowwise_adagrad_reference_`), or
        * ``optimizer="dgl"``: ``dgl.optim.SparseAdagrad.step`` with the per-row mean gradients.
        """
        cfg = self.config
        B, d, N = len(idx), cfg.dim, cfg.tweet_negatives  # as many user as tweet negatives (config)
        n_chunks = -(-B // cfg.chunk_size)
        neg = sampler.sample(n_chunks, gen)
        bu, bt, br, bw = (torch.from_numpy(a) for a in e.select(idx.numpy()))
        fused = cfg.optimizer != "dgl"  # fused and rowwise: the numba update
        u_ids, t_ids = torch.cat([bu, neg.users.reshape(-1)]), torch.cat([bt, neg.tweets.reshape(-1)])
        x, y = torch.empty(2, B, d), torch.empty(2, n_chunks, N, d)
        relation = self.relation.detach()
        dots = None
        if fused:
            # the update needs each table's distinct rows and their occurrences (grouped without a
            # sort); one numba pass gathers the operands straight from the tables
            (uid, ustarts, uorder), (tid, tstarts, torder) = group_two(self.user_rows, u_ids, self.tweet_rows, t_ids)
            dots = torch.empty(B), torch.empty(B)
            kernels.gather_operands(self.user.weight.numpy(), self.tweet.weight.numpy(), relation.numpy(), bu.numpy(), bt.numpy(),
                                    br.numpy(), neg.tweets.reshape(-1).numpy(), neg.users.reshape(-1).numpy(), x.numpy(),
                                    y.view(2, -1, d).numpy(), dots[0].numpy(), dots[1].numpy())
        else:
            # each distinct row is read once through the NodeEmbedding (recorded in its trace for
            # SparseAdagrad) and the operands gathered from those
            uid, uinv, uorder, ustarts = group_occurrences(u_ids)
            tid, tinv, torder, tstarts = group_occurrences(t_ids)
            self.sparse_opt.zero_grad()
            urows, trows = self.user(uid), self.tweet(tid)
            U, T = urows.detach(), trows.detach()
            # index_select copies whole rows; advanced indexing (U[i]) is several times slower on CPU
            torch.index_select(U, 0, uinv[:B], out=x[0])
            x[0].add_(relation.index_select(0, br))
            torch.index_select(T, 0, tinv[:B], out=x[1])
            torch.index_select(T, 0, tinv[B:], out=y[0].view(-1, d))
            torch.index_select(U, 0, uinv[B:], out=y[1].view(-1, d))
        with torch.no_grad():
            loss, du, drel, dt, dy = model.stacked_loss_and_grads(x, y, relation, br, bw, cfg.chunk_size, cfg.negative_reduction,
                                                                  self.matmul_dtype, dots, overwrite_x=True)
            dnt, dnu = dy[0].view(-1, d), dy[1].view(-1, d)
            if fused:
                fused_adagrad_(self.user.weight, self.user.optm_state[0], uid, ustarts, uorder, du, dnu, cfg.lr, ADAGRAD_EPS)
                fused_adagrad_(self.tweet.weight, self.tweet.optm_state[0], tid, tstarts, torder, dt, dnt, cfg.lr, ADAGRAD_EPS)
            else:
                gu = torch.zeros_like(U).index_add_(0, uinv[:B], du).index_add_(0, uinv[B:], dnu)
                gt = torch.zeros_like(T).index_add_(0, tinv[:B], dt).index_add_(0, tinv[B:], dnt)
                urows.grad = gu.div_(ustarts.diff().unsqueeze(1))
                trows.grad = gt.div_(tstarts.diff().unsqueeze(1))
        if not fused:
            self.sparse_opt.step()
        if cfg.relation_lr > 0:
            self.dense_opt.step(drel)
        return float(loss)

    def train_batch_autograd(self, e: PackedEdges, idx: torch.Tensor, sampler: NegativeSampler, gen: torch.Generator) -> float:
        """Reference for :meth:`train_batch`: autograd through :func:`graph.embed.model.batch_loss`
        with one NodeEmbedding call per (table, role), duplicates left to SparseAdagrad (slower).
        Element-wise Adagrad only (DGL's optimiser has no row-wise form)."""
        cfg = self.config
        if cfg.optimizer == "rowwise":
            raise ValueError("train_batch_autograd is the reference of the element-wise optimisers, not of 'rowwise'")
        B = len(idx)
        n_chunks = -(-B // cfg.chunk_size)
        neg = sampler.sample(n_chunks, gen)
        bu, bt, br, bw = (torch.from_numpy(a) for a in e.select(idx.numpy()))
        self.sparse_opt.zero_grad()
        self.relation.grad = None
        d = cfg.dim
        loss = model.batch_loss(self.user(bu), self.relation[br], self.tweet(bt), bw,
                                self.tweet(neg.tweets.reshape(-1)).view(n_chunks, -1, d),
                                self.user(neg.users.reshape(-1)).view(n_chunks, -1, d),
                                cfg.chunk_size, cfg.negative_reduction)
        loss.backward()
        self.sparse_opt.step()
        if cfg.relation_lr > 0:
            with torch.no_grad():
                self.dense_opt.step(self.relation.grad)
        return float(loss.detach())


# A checkpoint directory (EMB_DIR.checkpoint/) holds two slots, written in turn (epoch e into
# slot-(e % 2)), so the last complete checkpoint survives while the next one is written. A slot
# counts once its manifest.json exists: it is removed before the slot is rewritten and written
# last. The arrays are rewritten in place, into the same files two epochs later: on the 10M-edge
# benchmark graph (1.5 GB of tables and Adagrad state) new files took 3.1-3.4 s per checkpoint
# on this VM, where fresh page-cache pages cost kernel time (~0.5-2 s per 768 MB), and an
# in-place rewrite of a 768 MB file 0.08 s.
_SLOTS = ("slot-0", "slot-1")


def _write_npy(path: Path, a: np.ndarray) -> None:
    """``np.save(path, a)``; when ``path`` already holds an array of ``a``'s shape and dtype, its
    bytes are overwritten in place (the file's page-cache pages are reused, none allocated)."""
    a = np.ascontiguousarray(a)
    if path.exists():
        with open(path, "r+b") as f:
            try:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, fortran, dtype = read(f)
            except ValueError:
                shape, fortran, dtype = None, None, None
            if shape == a.shape and not fortran and dtype == a.dtype and os.fstat(f.fileno()).st_size == f.tell() + a.nbytes:
                f.write(memoryview(a).cast("B"))
                return
    np.save(path, a)


def _save_checkpoint(path: Path, tw: TwHINModel, meta: dict) -> None:
    """Write epoch ``meta["epoch"]``'s state into its slot of the checkpoint directory ``path``
    (the directory itself first appears complete, with one slot)."""
    manifest = {"kind": CHECKPOINT_KIND, "fingerprint": f"epoch-{meta['epoch']}", **meta}
    slot = _SLOTS[int(meta["epoch"]) % 2]
    if not path.exists():
        with atomic_dir(path) as tmp:
            _write_slot(tmp / slot, tw, manifest)
    else:
        _write_slot(path / slot, tw, manifest)


def _write_slot(slot: Path, tw: TwHINModel, manifest: dict) -> None:
    slot.mkdir(parents=True, exist_ok=True)
    (slot / "manifest.json").unlink(missing_ok=True)  # not a checkpoint until complete
    for name, a in tw.state(copy=False).items():  # training waits meanwhile: no copies needed
        _write_npy(slot / f"{name}.npy", a)
    write_json(slot / "manifest.json", manifest)


def latest_checkpoint(path: str | os.PathLike) -> Path | None:
    """The complete checkpoint of the latest epoch in the checkpoint directory ``path`` (a slot,
    or ``path`` itself as written before slots), or None."""
    path = Path(path)
    best, best_epoch = None, -1
    for d in (path, *(path / s for s in _SLOTS)):
        if (d / "manifest.json").exists():
            epoch = int(read_manifest(d, kind=CHECKPOINT_KIND)["epoch"])
            if epoch > best_epoch:
                best, best_epoch = d, epoch
    return best


def _invalidate_checkpoints(path: Path) -> None:
    """A run that starts afresh: no earlier slot may be resumed any more (its files stay, to be
    rewritten in place); a directory of the layout before slots is removed."""
    if (path / "manifest.json").exists():
        shutil.rmtree(path)
        return
    for s in _SLOTS:
        (path / s / "manifest.json").unlink(missing_ok=True)


def _check_outputs(out: Path, graph: GraphArtifact, overwrite: bool) -> None:
    """Refuse, before any training, an EMB_DIR or checkpoint path whose replacement could lose
    something that is not ours (see :func:`train_embeddings`)."""
    from graph.embed.io import KIND

    check_output(out, KIND, "an EMB_DIR (embeddings from `coengage graph embed`)", overwrite=overwrite, inputs=[graph.path])
    check_output(checkpoint_dir(out), CHECKPOINT_KIND, f"a checkpoint directory of `coengage graph embed --out {out}`",
                 overwrite=overwrite, inputs=[graph.path], recognise=lambda p: any((p / s).is_dir() for s in _SLOTS))


def _load_checkpoint(path: Path, graph: GraphArtifact, config: EmbedConfig) -> tuple[dict, dict]:
    meta = read_manifest(path, kind=CHECKPOINT_KIND)
    if meta["graph_fingerprint"] != graph.fingerprint:
        raise ArtifactError(f"--resume: checkpoint {path} was trained on graph {meta['graph_fingerprint']}, but {graph.path} is "
                            f"graph {graph.fingerprint}; delete the checkpoint or drop --resume")
    if meta["training_key"] != config.training_key():
        diff = {k: (meta["training_key"].get(k), v) for k, v in config.training_key().items() if meta["training_key"].get(k) != v}
        raise ArtifactError(f"--resume: checkpoint {path} was written with other settings {{field: (checkpoint, now)}} = {diff}; "
                            "resume with the same settings, or drop --resume to start over")
    state = {p.stem: np.load(p) for p in path.glob("*.npy")}
    return meta, state


def _eval_edges(held: EdgeSet, config: EmbedConfig) -> EdgeSet:
    if config.max_eval_edges and len(held) > config.max_eval_edges:
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0xE7]))
        return held.take(np.sort(rng.choice(len(held), config.max_eval_edges, replace=False)))
    return held


def evaluate(scorer, held: EdgeSet, num_tweets: int, relations: list[str], config: EmbedConfig) -> dict:
    ranks = link_prediction_ranks(scorer, held.users, held.rels, held.tweets, num_tweets,
                                  num_candidates=config.eval_candidates, seed=config.seed)
    return link_prediction_metrics(ranks, held.rels, relations)


def train_embeddings(graph: str | os.PathLike | GraphArtifact, out: str | os.PathLike, config: EmbedConfig | None = None,
                     resume: bool = False, progress: bool | None = None, write: bool = True, overwrite: bool = False) -> dict:
    """Train TwHIN embeddings of ``graph`` and write EMB_DIR ``out``; returns its manifest.

    ``resume`` continues from ``<out>.checkpoint`` (same graph and settings; ``epochs`` may grow).
    ``progress``: tqdm bar (None = only on a terminal). ``write=False`` skips writing EMB_DIR and
    returns the manifest with the arrays under ``"arrays"`` (benchmarks).
    Before training, ``out`` and its checkpoint directory are checked: an earlier EMB_DIR (and
    its checkpoint) is replaced, anything else that exists there is refused unless ``overwrite``,
    and ``out`` may never be or contain the graph (:func:`coengage.artifacts.check_output`).
    """
    from tqdm.auto import tqdm

    config = config or EmbedConfig()
    graph = graph if isinstance(graph, GraphArtifact) else load(graph)
    out = Path(out)
    if write:
        _check_outputs(out, graph, overwrite)
    threads = config.threads or available_cores()
    if threads > available_cores():
        log.warning("--threads %d is more than the %d cores this process may use: threads will wait for each other "
                    "(a step runs ~15 parallel regions); 0 uses the cores available", threads, available_cores())
    torch.set_num_threads(threads)
    import numba

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    t_start = time.perf_counter()

    edges = graph_edges(graph)
    train_pos, held_pos = split_edges(len(edges), config.holdout, config.seed)
    held = _eval_edges(edges.take(held_pos), config)
    te = PackedEdges(edges, train_pos)  # all training reads from here on
    E, n_held = len(te), len(held_pos)
    del edges, train_pos, held_pos
    relations = graph.relations
    log.info("training on %d edges, %d held out (%d evaluated), %d users, %d tweets, dim %d",
             E, n_held, len(held), graph.num_users, graph.num_tweets, config.dim)

    tw = TwHINModel(graph.num_users, graph.num_tweets, len(relations), config)
    precision = str(tw.matmul_dtype).removeprefix("torch.")
    log.info("matrix products in %s (--matmul-precision %s)", precision, config.matmul_precision)
    sampler = NegativeSampler(graph.num_users, graph.num_tweets, te.users, te.tweets,
                              config.tweet_negatives, config.user_negatives, config.degree_fraction)
    ckpt = checkpoint_dir(out)
    history: list[dict] = []
    start_epoch, train_seconds, eval_seconds, checkpoint_seconds = 0, 0.0, 0.0, 0.0
    if resume:
        found = latest_checkpoint(ckpt)
        if found is None:
            raise ArtifactError(f"--resume: no checkpoint at {ckpt}; run without --resume to start training")
        meta, state = _load_checkpoint(found, graph, config)
        tw.load_state(state)
        start_epoch, history = int(meta["epoch"]), list(meta["history"])
        train_seconds, eval_seconds = float(meta["train_seconds"]), float(meta["eval_seconds"])
        checkpoint_seconds = float(meta.get("checkpoint_seconds", 0.0))
        log.info("resuming from %s after epoch %d", found, start_epoch)
    elif ckpt.exists() and write:
        log.warning("ignoring the checkpoint at %s (no --resume); it will be overwritten", ckpt)
        _invalidate_checkpoints(ckpt)

    metrics = None
    for epoch in range(start_epoch, config.epochs):
        gen = torch.Generator().manual_seed(_seed(config.seed, epoch + 1))
        perm = torch.randperm(E, generator=gen)
        t0 = time.perf_counter()
        loss_sum, n_seen = 0.0, 0
        with tqdm(total=E, unit="edge", unit_scale=True, desc=f"epoch {epoch + 1}/{config.epochs}", disable=(None if progress is None else not progress)) as bar:
            for s in range(0, E, config.batch_size):
                idx = perm[s:s + config.batch_size]
                loss = tw.train_batch(te, idx, sampler, gen)
                loss_sum += loss * len(idx)
                n_seen += len(idx)
                bar.update(len(idx))
                bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        dt = time.perf_counter() - t0
        train_seconds += dt
        t1 = time.perf_counter()
        with torch.no_grad():
            metrics = evaluate(tw.scorer(), held, graph.num_tweets, relations, config)
        eval_seconds += time.perf_counter() - t1
        row = {"epoch": epoch + 1, "loss": loss_sum / max(n_seen, 1), "edges_per_s": E / dt if dt > 0 else None,
               "seconds": dt, **{k: metrics[k] for k in ("mrr", "hits@1", "hits@10", "hits@50")}}
        history.append(row)
        log.info("epoch %d: loss %.4f, %.0f edges/s, %s", row["epoch"], row["loss"], row["edges_per_s"] or 0,
                 f"held-out MRR {row['mrr']:.4f}, HITS@10 {row['hits@10']:.4f}" if metrics["count"] else
                 "no held-out edges to evaluate (--holdout 0)")
        if write:
            t2 = time.perf_counter()
            _save_checkpoint(ckpt, tw, {"epoch": epoch + 1, "graph_fingerprint": graph.fingerprint, "training_key": config.training_key(),
                                        "config": config.to_dict(), "history": history, "train_seconds": train_seconds,
                                        "eval_seconds": eval_seconds,
                                        "checkpoint_seconds": checkpoint_seconds})
            checkpoint_seconds += time.perf_counter() - t2

    if metrics is None:  # no epoch ran in this call (epochs 0, or resumed at the end)
        with torch.no_grad():
            metrics = evaluate(tw.scorer(), held, graph.num_tweets, relations, config)
    arrays = tw.arrays(copy=False)  # the model is not trained further: its tables are the result
    timing = {"train_seconds": train_seconds, "eval_seconds": eval_seconds, "checkpoint_seconds": checkpoint_seconds,
              "total_seconds": time.perf_counter() - t_start,
              "edges_per_s": (E * len(history) / train_seconds) if train_seconds > 0 else None, "threads": threads,
              "matmul_precision": precision}
    info = {"num_edges": {"train": int(E), "held_out": int(n_held), "evaluated": int(len(held))}}
    result = {"metrics": metrics, "history": history, "timing": timing, "config": config.to_dict(),
              "graph_fingerprint": graph.fingerprint, **info}
    if write:
        write_embeddings(out, **arrays, graph_fingerprint=graph.fingerprint, relations=relations, config=config.to_dict(),
                         metrics=metrics, history=history, timing=timing, extra=info)
        if ckpt.exists():
            shutil.rmtree(ckpt)
        result = json.loads((out / "manifest.json").read_text())
    else:
        result["arrays"] = arrays
    return result
