"""Collect the evaluation results of `coengage run` directories into benchmarks/results/quality.json.

    .venv/bin/python benchmarks/collect_quality.py synthetic=/tmp/lead_demo reddit_college=/tmp/rc

Each RUN_DIR/eval/<model>.json (written by `coengage lm eval` inside `coengage run`) becomes
``quality[dataset][model] = {hits@10, mrr, macro_f1, pairs_mrr, ...}``; models a run did not
evaluate are listed under ``not_measured``, never filled in. The run's config (steps, seeds,
model size) is recorded beside the figures. `benchmarks/quality.py` is the full matrix
(MiniLM start, triplet and untrained rows); this script reports what the cached runs measured.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, write_result  # noqa: E402

MODELS = ("social", "mlm", "triplet", "untrained", "tfidf", "random")


def figures(metrics: dict) -> dict:
    tasks = metrics.get("tasks", {})
    eng, cls, pairs = tasks.get("engagement", {}), tasks.get("classify", {}), tasks.get("pairs", {})
    return {
        "hits@10": eng.get("hits@10"), "mrr": eng.get("mrr"), "engagement_candidates": eng.get("candidates"),
        "engagement_mean_candidates": eng.get("mean_candidates"), "random_hits@10": eng.get("random_hits@10"),
        "test_users": eng.get("test_users"), "macro_f1": cls.get("macro_f1"),
        "pairs_mrr": pairs.get("mrr"), "pairs_hr@10": pairs.get("hr@10"), "pairs_hr@100": pairs.get("hr@100"),
        "pairs_mpr": pairs.get("mpr"),
    }


def collect(run_dir: Path) -> dict:
    out = {"run_dir": str(run_dir), "models": {}}
    for path in sorted((run_dir / "eval").glob("*.json")):
        out["models"][path.stem] = figures(json.loads(path.read_text()))
    out["not_measured"] = [m for m in MODELS if m not in out["models"]]
    run = run_dir / "run.json"
    if run.exists():
        cfg = json.loads(run.read_text()).get("config", {})
        out["setup"] = {k: cfg.get(k) for k in ("train", "eval", "embed", "mine", "build")}
    return out


def main(argv: list[str]) -> int:
    if not argv or any("=" not in a for a in argv):
        print(__doc__)
        return 2
    result = {"hardware": f"{platform.machine()} CPU, 2 cores, no GPU", "datasets": {}}
    for arg in argv:
        name, run_dir = arg.split("=", 1)
        result["datasets"][name] = collect(Path(run_dir))
        result[name] = result["datasets"][name]["models"]
    result["command"] = "benchmarks/collect_quality.py " + " ".join(argv)
    path = write_result("quality", result)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
