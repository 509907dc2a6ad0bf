"""`coengage lm train`: options generated from :class:`lm.config.TrainConfig` field metadata."""

from __future__ import annotations

import argparse
import dataclasses
import typing

from lm.config import TrainConfig

DESCRIPTION = """\
Train a BERT-style encoder on mined pairs of socially similar tweets (TwHIN-BERT).

The tweet embedding is [CLS] -> MLP projection head; the social loss (InfoNCE with in-batch
negatives, or MetricBERT's angular triplet loss) is trained jointly with masked language
modelling: L = L_social + lambda * L_MLM. Start from a local Hugging Face masked LM (--model) or
a new BERT with a tokenizer trained on the pair texts (--from-scratch). Multi-GPU / multi-node:
launch with `torchrun --nproc-per-node N .venv/bin/coengage lm train ...` (DDP; negatives span
the global batch).

MODEL_DIR gets the save_pretrained model and tokenizer (AutoModel / AutoTokenizer load it),
head.safetensors (projection head), coengage_config.json, train_log.jsonl and manifest.json.
Checkpoints go to MODEL_DIR.work/ during training; --resume continues from the last one.
"""


def _is_bool(tp) -> bool:
    return tp in (bool, "bool") or str(tp) in ("bool", "bool | None")


def register(sub) -> None:
    p = sub.add_parser("train", help="train the encoder on a pair file", description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", required=True, metavar="PAIRS", help=TrainConfig.__dataclass_fields__["pairs"].metadata["help"])
    p.add_argument("--texts", metavar="GRAPH_DIR", help=TrainConfig.__dataclass_fields__["texts"].metadata["help"])
    p.add_argument("--out", required=True, metavar="MODEL_DIR", help=TrainConfig.__dataclass_fields__["out"].metadata["help"])
    p.add_argument("--scratch-override", action="append", metavar="KEY=VALUE",
                   help=TrainConfig.__dataclass_fields__["scratch_overrides"].metadata["help"])
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        if f.metadata.get("cli", True) is False:
            continue
        flag = "--" + f.name.replace("_", "-")
        help_ = f.metadata["help"]
        tp = hints[f.name]
        if tp is bool:
            p.add_argument(flag, action="store_true", help=help_)
            continue
        default = f.default
        kw = {"help": help_ if default in (None, ()) else f"{help_} (default: {default})"}
        if "choices" in f.metadata:
            kw["choices"] = f.metadata["choices"]
        if f.name == "head_dims":
            kw["type"] = lambda s: tuple(int(x) for x in s.split(",") if x.strip())
            kw["metavar"] = "D1,D2"
        elif tp in (int, typing.Optional[int]):
            kw["type"] = int
        elif tp in (float, typing.Optional[float]):
            kw["type"] = float
        p.add_argument(flag, default=default, **kw)
    p.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="always show the progress bar (default: only on a terminal)")
    p.set_defaults(func=run)


def config_from_args(args) -> TrainConfig:
    from lm.config import parse_overrides

    names = {f.name for f in dataclasses.fields(TrainConfig)}
    kw = {k: v for k, v in vars(args).items() if k in names}
    kw["scratch_overrides"] = parse_overrides(args.scratch_override)
    return TrainConfig(**kw)


def run(args) -> int:
    from lm.train import train

    config = config_from_args(args)
    try:
        train(config)
    except KeyboardInterrupt:
        _resume_hint(config)
        raise
    return 0


def _resume_hint(config) -> None:
    """After Ctrl-C: name the last checkpoint and how to continue from it."""
    import sys

    from lm.train import checkpoints, work_dir_of

    found = checkpoints(work_dir_of(config.out)) if config.out else []
    if found:
        print(f"coengage: the latest checkpoint is {found[-1]}; continue with the same command and --resume", file=sys.stderr)
