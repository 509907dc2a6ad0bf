"""Configuration of `coengage lm eval`: one validated dataclass, each field explained.

The CLI exposes every field as ``--field-name``; the whole config is written into metrics.json.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields

from coengage.errors import InputError

TASKS = ("engagement", "classify", "pairs")
POOLINGS = ("cls", "cls_mean")


@dataclass
class EvalConfig:
    """Hyper-parameters of the evaluation protocols (defaults follow TwHIN-BERT §3.2)."""

    tasks: tuple = field(default=TASKS, metadata={"help": "comma-separated tasks: engagement, classify, pairs"})
    seeds: int = field(default=6, metadata={"help": "engagement: train the two-tower model with this many seeds and report the median"})
    seed: int = field(default=0, metadata={"help": "first seed (seeds seed .. seed+seeds-1); also seeds subsampling, baselines and LR"})
    label_col: str = field(default="", metadata={"help": "classify: the texts column to predict (hashtag for synthetic data, subreddit for "
                                                        "reddit_college); empty = the first non-text column of the texts table"})
    pooling: str = field(default="cls_mean", metadata={"help": "tweet features for engagement and classify: 'cls_mean' = [CLS] ‖ mean of "
                                                                "non-special tokens (the paper), 'cls' = [CLS] only"})
    pairs_pooling: str = field(default="cls", metadata={"help": "pairs retrieval: 'cls' (what the social loss trains) or 'cls_mean'; "
                                                                "baselines use their whole vector"})
    encode_batch_size: int = field(default=64, metadata={"help": "texts per forward pass when encoding with the language model"})
    max_train_tweets: int = field(default=0, metadata={"help": "encode at most this many train-split tweets (a seeded uniform sample) for "
                                                                "training the heads and as the retrieval pool; 0 = all of them"})
    # engagement (two-tower)
    dim: int = field(default=128, metadata={"help": "engagement: both towers project to this width"})
    hidden: int = field(default=256, metadata={"help": "engagement: hidden width of each tower's MLP; 0 = a linear projection"})
    batch_size: int = field(default=512, metadata={"help": "engagement: (user, tweet) positives per optimiser step"})
    negatives: int = field(default=1024, metadata={"help": "engagement: sampled negative tweets per step, shared by the batch, drawn with "
                                                          "probability ∝ (train engagements of the tweet)^0.75"})
    neg_power: float = field(default=0.75, metadata={"help": "engagement: exponent of the frequency in the negative distribution"})
    lr: float = field(default=1e-3, metadata={"help": "engagement: Adam learning rate"})
    max_steps: int = field(default=3000, metadata={"help": "engagement: at most this many optimiser steps per seed"})
    eval_every: int = field(default=200, metadata={"help": "engagement: evaluate dev HITS@10 every this many steps (model selection)"})
    patience: int = field(default=4, metadata={"help": "engagement: stop after this many dev evaluations without improvement"})
    candidates: int = field(default=1000, metadata={"help": "engagement: each dev/test user ranks 1 engaged tweet among this many "
                                                            "(the rest drawn uniformly from the same split's tweets the user did not engage)"})
    # classify
    lr_c: tuple = field(default=(0.01, 0.1, 1.0, 10.0), metadata={"help": "classify: inverse regularisation strengths tried; the best "
                                                                             "dev macro-F1 picks one"})
    max_classify_train: int = field(default=20000, metadata={"help": "classify: at most this many labelled train tweets fit the "
                                                                      "logistic regression (seeded sample); 0 = all"})
    # pairs
    max_queries: int = field(default=2000, metadata={"help": "pairs: at most this many query pairs (seeded sample)"})
    min_common_users: int = field(default=2, metadata={"help": "pairs (built-in held-out pairs): two test tweets form a pair when at least "
                                                                "this many users engaged both"})
    max_user_engagements: int = field(default=100, metadata={"help": "pairs (built-in held-out pairs): users with more test engagements "
                                                                      "than this are ignored (Twitter's similarity job drops them too)"})
    # baselines
    tfidf_dim: int = field(default=256, metadata={"help": "tfidf baseline: SVD components of the TF-IDF matrix (fit on train texts)"})
    random_dim: int = field(default=256, metadata={"help": "random baseline: width of the random tweet vectors"})
    threads: int = field(default=0, metadata={"help": "torch threads; 0 = leave torch's default"})

    def __post_init__(self) -> None:
        if isinstance(self.tasks, str):
            self.tasks = tuple(t.strip() for t in self.tasks.split(",") if t.strip())
        if isinstance(self.lr_c, str):
            self.lr_c = tuple(float(x) for x in self.lr_c.split(",") if x.strip())
        self.tasks = tuple(self.tasks)
        self.lr_c = tuple(float(c) for c in self.lr_c)
        self.validate()

    def validate(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise InputError(f"eval config: {message}")

        unknown = [t for t in self.tasks if t not in TASKS]
        need(not unknown and len(self.tasks) > 0, f"tasks must be a non-empty subset of {list(TASKS)}, got {list(self.tasks)}")
        need(self.seeds >= 1, f"seeds must be >= 1, got {self.seeds}")
        need(self.pooling in POOLINGS, f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        need(self.pairs_pooling in POOLINGS, f"pairs_pooling must be one of {POOLINGS}, got {self.pairs_pooling!r}")
        for name in ("encode_batch_size", "dim", "batch_size", "negatives", "max_steps", "eval_every", "patience", "tfidf_dim", "random_dim"):
            need(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        need(self.candidates >= 2, f"candidates must be >= 2, got {self.candidates}")
        need(self.hidden >= 0, f"hidden must be >= 0, got {self.hidden}")
        need(self.lr > 0, f"lr must be > 0, got {self.lr}")
        need(self.neg_power >= 0, f"neg_power must be >= 0, got {self.neg_power}")
        need(len(self.lr_c) > 0 and all(c > 0 for c in self.lr_c), f"lr_c must be positive numbers, got {list(self.lr_c)}")
        for name in ("max_train_tweets", "max_classify_train", "max_queries", "threads"):
            need(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        need(self.min_common_users >= 1, f"min_common_users must be >= 1, got {self.min_common_users}")
        need(self.max_user_engagements >= 2, f"max_user_engagements must be >= 2, got {self.max_user_engagements}")

    @property
    def seed_list(self) -> list[int]:
        return [self.seed + i for i in range(self.seeds)]

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["tasks"] = list(self.tasks)
        d["lr_c"] = list(self.lr_c)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "EvalConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"eval config: unknown fields {unknown}; known: {sorted(known)}")
        return cls(**d)

    @classmethod
    def help(cls, name: str) -> str:
        return {f.name: f.metadata.get("help", "") for f in fields(cls)}[name]
