"""Configuration of `coengage graph embed`: one validated dataclass, each field explained.

The config travels into EMB_DIR's manifest and into every checkpoint; ``--resume`` refuses a
checkpoint written under a different training config (see :meth:`EmbedConfig.training_key`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields

from coengage.errors import InputError

NEGATIVE_REDUCTIONS = ("mean", "sum")
OPTIMIZERS = ("fused", "dgl", "rowwise")
MATMUL_PRECISIONS = ("auto", "float32", "bfloat16")


@dataclass
class EmbedConfig:
    """Hyper-parameters of TwHIN training (translation model, logistic loss, sparse Adagrad)."""

    dim: int = field(default=128, metadata={"help": "embedding width d of users, tweets and relation vectors (the paper uses 256)"})
    epochs: int = field(default=10, metadata={"help": "passes over the training edges"})
    batch_size: int = field(default=8192, metadata={"help": "positive edges per optimiser step"})
    chunk_size: int = field(default=512, metadata={"help": "positives that share one set of negatives (PyTorch-BigGraph chunks); "
                                                            "scoring a chunk is a [chunk, negatives] matrix product"})
    negatives: int = field(default=100, metadata={"help": "negatives per positive edge, split evenly between corrupting the tweet "
                                                          "and corrupting the user"})
    degree_fraction: float = field(default=0.5, metadata={"help": "share of negatives drawn in proportion to node degree (prevalence); "
                                                                  "the rest are drawn uniformly over nodes"})
    negative_reduction: str = field(default="mean", metadata={"help": "'mean': a positive's negative terms are averaged, so positive and "
                                                                      "negative parts weigh the same (PyTorch-BigGraph); 'sum': the paper's "
                                                                      "literal sum over negatives"})
    lr: float = field(default=0.1, metadata={"help": "learning rate of the node tables' sparse Adagrad (element-wise or row-wise, --optimizer)"})
    relation_lr: float = field(default=0.01, metadata={"help": "learning rate of dense Adagrad on the relation vectors"})
    init_scale: float = field(default=0.1, metadata={"help": "node vectors start as N(0, init_scale^2 / dim) per coordinate"})
    holdout: float = field(default=0.01, metadata={"help": "fraction of edges held out of training for link-prediction evaluation"})
    max_eval_edges: int = field(default=20000, metadata={"help": "at most this many held-out edges are ranked after each epoch (a fixed "
                                                                 "seeded subset); 0 ranks them all"})
    eval_candidates: int = field(default=1000, metadata={"help": "candidate tweets each held-out edge is ranked against (uniform, "
                                                                 "at least 1000 for reported figures)"})
    seed: int = field(default=0, metadata={"help": "seed of the split, initialisation, edge order and negatives"})
    threads: int = field(default=0, metadata={"help": "torch and numba threads; 0 = the cores this process may use"})
    optimizer: str = field(default="fused", metadata={"help": "the node tables' sparse Adagrad: 'fused' = DGL's element-wise "
                                                              "SparseAdagrad update in one numba pass over the batch's distinct rows "
                                                              "on DGL's weights and state; 'dgl' = dgl.optim.SparseAdagrad.step "
                                                              "(slower; the same update up to the last bit of the square root); "
                                                              "'rowwise' = PyTorch-BigGraph's row-wise Adagrad (one accumulator per "
                                                              "row: half the tables' memory, about the same step time; a different optimiser)"})
    matmul_precision: str = field(default="auto", metadata={"help": "number format of the three batched matrix products of a step "
                                                                    "(scores and their two gradients): 'bfloat16' runs them about "
                                                                    "twice as fast on CPUs with native bfloat16 dot products "
                                                                    "(AVX512_BF16 or AMX), float32 accumulation, everything else "
                                                                    "float32; 'float32'; 'auto' = bfloat16 where the CPU has them"})

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise InputError(f"embed config: {message}")

        need(self.dim >= 1, f"dim must be >= 1, got {self.dim}")
        need(self.epochs >= 0, f"epochs must be >= 0, got {self.epochs}")
        need(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        need(self.chunk_size >= 1, f"chunk_size must be >= 1, got {self.chunk_size}")
        need(self.negatives >= 2 and self.negatives % 2 == 0, f"negatives must be an even number >= 2 (half corrupt the tweet, half the user), got {self.negatives}")
        need(0.0 <= self.degree_fraction <= 1.0, f"degree_fraction must lie in [0, 1], got {self.degree_fraction}")
        need(self.negative_reduction in NEGATIVE_REDUCTIONS, f"negative_reduction must be one of {NEGATIVE_REDUCTIONS}, got {self.negative_reduction!r}")
        need(self.lr > 0 and self.relation_lr >= 0, f"lr must be > 0 and relation_lr >= 0, got {self.lr}, {self.relation_lr}")
        need(self.init_scale > 0, f"init_scale must be > 0, got {self.init_scale}")
        need(0.0 <= self.holdout < 0.5, f"holdout must lie in [0, 0.5), got {self.holdout}")
        need(self.max_eval_edges >= 0, f"max_eval_edges must be >= 0, got {self.max_eval_edges}")
        need(self.eval_candidates >= 1, f"eval_candidates must be >= 1, got {self.eval_candidates}")
        need(self.threads >= 0, f"threads must be >= 0, got {self.threads}")
        need(self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        need(self.matmul_precision in MATMUL_PRECISIONS,
             f"matmul_precision must be one of {MATMUL_PRECISIONS}, got {self.matmul_precision!r}")

    @property
    def tweet_negatives(self) -> int:
        """Negatives per positive that corrupt the tweet (the rest corrupt the user)."""
        return self.negatives // 2

    @property
    def user_negatives(self) -> int:
        return self.negatives - self.tweet_negatives

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "EmbedConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"embed config: unknown fields {unknown}; known: {sorted(known)}")
        return cls(**d)

    def training_key(self) -> dict:
        """The fields a resumed run must share with the checkpoint: all but epochs, threads and the
        optimizer path, where 'fused' and 'dgl' take the same steps (up to the square root's last bit)
        on the same state layout; 'rowwise' is another optimiser and state, so it is part of the key."""
        d = self.to_dict()
        d.pop("epochs")
        d.pop("threads")
        if d.pop("optimizer") == "rowwise":
            d["adagrad"] = "rowwise"
        return d

    @classmethod
    def help(cls, name: str) -> str:
        return {f.name: f.metadata.get("help", "") for f in fields(cls)}[name]
