"""`coengage run` (every stage from one YAML config) and `coengage demo` (the same on synthetic data).

Both go through :func:`coengage.run.run`; the demo's config is :data:`DEMO_CONFIG` (identical
to ``configs/demo.yaml``, checked by a test) so it works from an installed package too.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import time

log = logging.getLogger(__name__)

# The demo: synthetic data -> graph (20% of tweets held out) -> TwHIN embeddings -> walk pairs ->
# two from-scratch BERT-tiny models (social = InfoNCE + 0.05 MLM, and the MLM-only ablation; same
# pairs, texts and steps) -> evaluation of both on the held-out tweets -> report.html.
DEMO_CONFIG = {
    "run_dir": "demo_out",
    "seed": 0,
    "runtime": {"torch_threads": 1, "numba_threads": 0},
    "data": {"synth": {"users": 2000, "tweets": 5000, "engagements": 100000, "topics": 8}},
    "build": {"holdout": 0.2, "label_cols": ["hashtag", "topic"]},
    "embed": {"dim": 64, "epochs": 10},
    "mine": {"method": "walk"},
    "train": {
        "defaults": {"from_scratch": "tiny", "vocab_size": 8000, "max_steps": 300, "batch_size": 32, "lr": 5e-4,
                     "save_every": 50},
        "models": {"social": {"objective": "infonce"}, "mlm": {"objective": "mlm"}},
    },
    "eval": {"label_col": "hashtag", "seeds": 3, "max_steps": 1000, "eval_every": 100, "patience": 3,
             "tasks": ["engagement", "classify", "pairs"], "baselines": ["random"]},
    "report": {"samples": 8},
}

# --quick: a smoke run in about a minute (tests); not a result.
QUICK_OVERRIDES = [
    "data.synth.users=300", "data.synth.tweets=600", "data.synth.engagements=8000", "data.synth.topics=4",
    "embed.epochs=2", "embed.dim=16", "train.defaults.max_steps=6", "train.defaults.batch_size=8",
    "train.defaults.vocab_size=1000", "train.defaults.save_every=2", "eval.seeds=1", "eval.max_steps=40",
    "eval.eval_every=20", "eval.candidates=100", "eval.tasks=[engagement, classify]", "eval.baselines=[]",
]


def _print_results(results, run_dir, total_s: float, cpu_s: float) -> None:
    from coengage.report import eval_table, format_table

    print(f"\n{'stage':<16}{'status':<9}{'seconds':>9}{'CPU s':>9}")
    for r in results:
        print(f"{r.name:<16}{r.status:<9}{r.seconds:>9.1f}{r.cpu_seconds:>9.1f}")
    print(f"{'total':<25}{total_s:>9.1f}{cpu_s:>9.1f}")
    rows = eval_table(run_dir)
    if rows:
        print("\n" + format_table(rows))
    report = os.path.join(run_dir, "report.html")
    if os.path.exists(report):
        print(f"\nreport: {report}")


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _execute(cfg, run_dir, args) -> int:
    from coengage.run import run
    from coengage.run.runner import Runner

    if getattr(args, "status", False):
        for row in Runner(cfg, run_dir).status():
            print(f"{row['stage']:<16}{row['state']}")
        return 0
    t0, c0 = time.perf_counter(), _cpu()
    results = run(cfg, run_dir, from_stage=args.from_stage, until=getattr(args, "until", None))
    _print_results(results, run_dir, time.perf_counter() - t0, _cpu() - c0)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from coengage.errors import InputError
    from coengage.run import load_config

    overrides = list(args.set or [])
    if args.data_dir:
        overrides.append(f"data.dir={args.data_dir}")
    cfg = load_config(args.config, overrides=overrides)
    run_dir = args.out or cfg.run_dir
    if not run_dir:
        raise InputError(f"{cfg.source}: no run directory: give --out DIR or run_dir: DIR in the config")
    return _execute(cfg, run_dir, args)


def cmd_demo(args: argparse.Namespace) -> int:
    from coengage.run import load_config

    raw = copy.deepcopy(DEMO_CONFIG)
    overrides = (QUICK_OVERRIDES if args.quick else []) + list(args.set or [])
    cfg = load_config(None, raw=raw, overrides=overrides)
    return _execute(cfg, args.out, args)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="from_stage", metavar="STAGE",
                   help="run this stage and every later one even if up to date: synth, build, stats, embed, mine, "
                        "train (or train.NAME), eval (or eval.NAME), report")
    p.add_argument("--until", metavar="STAGE", help="stop after this stage (same names as --from)")
    p.add_argument("--set", action="append", metavar="KEY.PATH=VALUE",
                   help="override a config value (VALUE is YAML), e.g. --set train.defaults.max_steps=50; repeatable")
    p.add_argument("--status", action="store_true", help="print which stages are up to date and which would run; run nothing")


RUN_DESCRIPTION = """\
Run the whole pipeline from one YAML config: [synth] -> graph build -> graph stats -> graph embed
-> mine -> lm train (one per train.models entry) -> lm eval (each model, baselines) -> report.html.

Every artifact goes under the run directory (--out, or run_dir in the config):
  data/ graph/ stats/ emb/ pairs.parquet models/NAME/ eval/NAME.json report.html .stages/
A stage is skipped when its config and the fingerprints of its inputs are unchanged and its
artifact is intact (.stages/STAGE.json records them); --from STAGE forces a rerun from there.
Stages write atomically, so a killed run leaves no half-written artifact: run the same command
again and it finishes the work (embedding and LM training resume from their checkpoints).

The config is validated before anything runs: an unknown key or a bad value is an error that
names the key's path and what is allowed. Sections: data, build, embed, mine, train, eval,
report, runtime (see configs/demo.yaml, configs/reddit_college.yaml and docs/run.md).
"""


def register(sub) -> None:
    p = sub.add_parser("run", help="run every stage from one YAML config (cached, resumable)",
                       description=RUN_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n  coengage run --config configs/demo.yaml --out /tmp/run\n"
                              "  coengage run --config configs/reddit_college.yaml --data-dir ../shared/data/reddit_college "
                              "--out /tmp/reddit\n  coengage run --config configs/demo.yaml --out /tmp/run --from train")
    p.add_argument("--config", required=True, metavar="YAML", help="the run config (YAML)")
    p.add_argument("--out", metavar="RUN_DIR", help="run directory (default: run_dir in the config)")
    p.add_argument("--data-dir", metavar="DIR", help="directory the config's data.log / data.texts are relative to "
                                                       "(same as --set data.dir=DIR)")
    _common(p)
    p.set_defaults(func=cmd_run)

    d = sub.add_parser(
        "demo",
        help="run the whole pipeline on built-in synthetic data and print the results table",
        description="Run the pipeline of configs/demo.yaml: synthetic engagement log (2,000 users, 5,000 tweets, "
                    "100,000 engagements) -> graph with 20%% of tweets held out -> TwHIN embeddings -> random-walk "
                    "pairs -> two BERT-tiny models trained from scratch (social = InfoNCE + 0.05 MLM, and the "
                    "MLM-only ablation) -> evaluation of both and a random baseline on the held-out tweets (engagement "
                    "HITS@10/MRR, classification macro-F1) -> report.html; prints the final table. Re-running reuses finished stages.",
    )
    d.add_argument("--out", default="demo_out", help="run directory for every artifact of the demo (default: %(default)s)")
    d.add_argument("--quick", action="store_true", help="tiny settings: a smoke test in about a minute, not a result")
    _common(d)
    d.set_defaults(func=cmd_demo)
