"""Shared by tests/test_run*.py, test_report.py, test_demo.py: a tiny run config and artifact comparisons."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np

TINY_SCRATCH = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}

# A whole pipeline in well under a minute on 2 shared cores: small synthetic data, a 1-layer BERT.
TINY = {
    "seed": 0,
    "runtime": {"torch_threads": 1},
    "data": {"synth": {"users": 200, "tweets": 400, "engagements": 5000, "topics": 4}},
    "build": {"holdout": 0.2},
    "embed": {"dim": 8, "epochs": 2, "eval_candidates": 50},
    "mine": {"method": "walk", "walks_per_query": 50},
    "train": {"defaults": {"from_scratch": "tiny", "scratch_overrides": TINY_SCRATCH, "vocab_size": 400, "max_steps": 6,
                           "batch_size": 8, "max_length": 32, "save_every": 2, "log_every": 1},
              "models": {"social": {"objective": "infonce"}, "mlm": {"objective": "mlm"}}},
    "eval": {"enabled": False},
    "report": {"enabled": False},
}


def tiny(**sections) -> dict:
    cfg = copy.deepcopy(TINY)
    for k, v in sections.items():
        cfg[k] = v
    return cfg


def artifact_contents(run_dir: Path) -> dict:
    """What must be identical between an interrupted-and-rerun and an uninterrupted run: the
    graph (content fingerprint, held-out part), embedding arrays, pair rows, model weights."""
    import pandas as pd
    from safetensors.numpy import load_file

    run_dir = Path(run_dir)
    g = json.loads((run_dir / "graph" / "manifest.json").read_text())
    out = {"graph": g["fingerprint"], "heldout": (g.get("split") or {}).get("heldout_fingerprint")}
    for name in ("user", "tweet", "relation"):
        out[f"emb.{name}"] = np.load(run_dir / "emb" / f"{name}.npy")
    out["pairs"] = pd.read_parquet(run_dir / "pairs.parquet")
    for m in sorted((run_dir / "models").iterdir()):
        if m.is_dir() and not m.name.endswith(".work"):
            out[f"model.{m.name}"] = load_file(str(m / "model.safetensors"))
    return out


def assert_same_contents(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, np.ndarray):
            assert np.array_equal(x, y), k
        elif hasattr(x, "equals"):
            assert x.equals(y), k
        elif isinstance(x, dict):
            assert x.keys() == y.keys(), k
            for t in x:
                assert np.array_equal(x[t], y[t]), f"{k}: tensor {t} differs"
        else:
            assert x == y, k
