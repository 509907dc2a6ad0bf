"""`coengage lm eval`: evaluate frozen tweet embeddings (TwHIN-BERT §3.2) -> metrics.json."""

from __future__ import annotations

import argparse
import dataclasses
import json

DESCRIPTION = """\
Evaluate a model's frozen tweet embeddings on the held-out split of a graph built with
`coengage graph build --holdout 0.2` (dev/test tweets, their texts and engagements are in
GRAPH_DIR/heldout/ and were never seen by embed, mine or lm train).

Tasks (--task, comma-separated):
  engagement  a two-tower model maps TwHIN user embeddings (--embeddings) and tweet features
              ([CLS] ‖ mean of tokens) to 128-d; trained on train-split engagements with
              negatives ∝ frequency^0.75, selected on dev HITS@10; each test user ranks one
              engaged test tweet among 1,000 (999 random test tweets); HITS@10 and MRR,
              median over --seeds seeds
  classify    logistic regression on the features predicting --label-col: fit on train tweets,
              C chosen on dev, macro-F1 on test
  pairs       retrieve each held-out co-engaged test tweet pair (or --pairs) among all tweets
              by cosine: MRR, HR@10, HR@100, mean percentile rank

--model is a `coengage lm train` directory, untrained:<save_pretrained dir>, tfidf or random.
"""

_SKIP = {"tasks", "seeds", "seed", "label_col", "lr_c"}  # given explicit flags below


def register(lm_sub) -> None:
    from lm.eval.config import EvalConfig

    p = lm_sub.add_parser("eval", help="evaluate a model: engagement HITS@10/MRR, macro-F1, pair retrieval",
                          description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, metavar="MODEL",
                   help="MODEL_DIR from `coengage lm train`, untrained:<dir> (a save_pretrained checkpoint), tfidf or random")
    p.add_argument("--graph", required=True, metavar="GRAPH_DIR", help="graph built with --holdout (its heldout/ holds dev/test)")
    p.add_argument("--embeddings", metavar="EMB_DIR", help="`coengage graph embed` output of GRAPH_DIR (user rows); needed by engagement")
    p.add_argument("--pairs", metavar="PAIRS", help="pairs task: a pair file to retrieve (pairs the model never trained on); "
                                                    "default: co-engaged held-out test tweets")
    p.add_argument("--task", default="engagement,classify,pairs", help="comma-separated tasks (default: all three)")
    p.add_argument("--label-col", default="", help=EvalConfig.help("label_col"))
    p.add_argument("--seeds", type=int, default=6, help=EvalConfig.help("seeds"))
    p.add_argument("--seed", type=int, default=0, help=EvalConfig.help("seed"))
    p.add_argument("--lr-c", default="0.01,0.1,1,10", help=EvalConfig.help("lr_c") + " (comma-separated)")
    for f in dataclasses.fields(EvalConfig):
        if f.name in _SKIP:
            continue
        p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default,
                       help=f"{f.metadata.get('help', '')} (default: {f.default})")
    p.add_argument("--features-cache", metavar="NPZ", help="keep the encoded tweet features in this .npz and reuse them when the "
                                                          "model, tweets and pooling are the same (saves re-encoding)")
    p.add_argument("--out", required=True, metavar="METRICS_JSON", help="where to write metrics.json (atomically)")
    p.set_defaults(func=run)


def run(args) -> int:
    from coengage.errors import InputError
    from lm.eval.config import EvalConfig
    from lm.eval.run import evaluate

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(EvalConfig) if f.name not in _SKIP}
    cfg = EvalConfig(tasks=args.task, seeds=args.seeds, seed=args.seed, label_col=args.label_col, lr_c=args.lr_c, **values)
    if "engagement" in cfg.tasks and not args.embeddings:
        raise InputError("the engagement task needs --embeddings EMB_DIR (user embeddings from `coengage graph embed`)")
    result = evaluate(args.model, args.graph, args.embeddings, cfg, pairs=args.pairs, out=args.out, features_cache=args.features_cache)
    print(json.dumps({"model": args.model, **result["summary"]}, indent=2))
    return 0
