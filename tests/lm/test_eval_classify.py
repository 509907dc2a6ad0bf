"""Logistic-regression macro-F1 on frozen embeddings: planted labels are learned, noise is not."""

from __future__ import annotations

import numpy as np

from lm.eval.classify import evaluate_classification


def _data(n, informative, seed=0, k=5, d=20):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d)) * 2
    y = rng.integers(0, k, n)
    x = rng.standard_normal((n, d)) + (centres[y] if informative else 0)
    return x.astype(np.float32), np.array([f"#tag{i}" for i in y], dtype=object)


def test_planted_labels_are_classified_and_dev_picks_c():
    x, y = _data(1500, True)
    m = evaluate_classification(x[:1000], y[:1000], x[1000:1250], y[1000:1250], x[1250:], y[1250:], cs=(0.001, 1.0))
    assert m["macro_f1"] > 0.9, m
    assert m["C"] in (0.001, 1.0) and len(m["tried"]) == 2
    assert m["C"] == max(m["tried"], key=lambda t: t["dev_macro_f1"])["C"]
    assert all(1 <= t["iterations"] <= 500 for t in m["tried"])  # lbfgs iterations, recorded per C
    assert m["classes"] == 5 and m["num_test"] == 250


def test_noise_features_are_near_chance():
    x, y = _data(1500, False)
    m = evaluate_classification(x[:1000], y[:1000], x[1000:1250], y[1000:1250], x[1250:], y[1250:], cs=(0.1,))
    assert m["macro_f1"] < 0.35, m  # chance is about 0.2 for 5 balanced classes
