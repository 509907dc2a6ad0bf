"""The classification task: logistic regression on frozen embeddings -> macro-F1.

Features are standardised with train statistics; a multinomial logistic regression
(scikit-learn, lbfgs) is fit on the train rows once per inverse regularisation strength C;
the C with the best dev macro-F1 is kept and scored once on the test rows. The test split
never chooses anything.
"""

from __future__ import annotations

import logging
import time
import warnings

import numpy as np

from lm.eval.metrics import macro_f1

log = logging.getLogger(__name__)


def evaluate_classification(x_train: np.ndarray, y_train, x_dev: np.ndarray, y_dev, x_test: np.ndarray, y_test, *,
                            cs=(0.01, 0.1, 1.0, 10.0), seed: int = 0, max_iter: int = 500) -> dict:
    """Fit on train, pick C on dev, report test macro-F1 (and accuracy) of the chosen C."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    y_train, y_dev, y_test = (np.asarray(y, dtype=object).astype(str) for y in (y_train, y_dev, y_test))
    if len(np.unique(y_train)) < 2:
        raise ValueError(f"classification needs at least 2 classes in the train rows, found {np.unique(y_train).tolist()}")
    if len(y_test) == 0:
        raise ValueError("classification: no labelled test rows")
    mu = x_train.mean(axis=0, dtype=np.float64)
    sd = x_train.std(axis=0, dtype=np.float64)
    sd[sd < 1e-8] = 1.0

    def z(x):
        return ((np.asarray(x, dtype=np.float64) - mu) / sd).astype(np.float32)

    xt, xd, xs = z(x_train), z(x_dev), z(x_test)
    tried = []
    best = None
    for c in cs:
        t0 = time.perf_counter()
        clf = LogisticRegression(C=float(c), max_iter=max_iter, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(xt, y_train)
        dev_f1 = macro_f1(y_dev, clf.predict(xd)) if len(y_dev) else float("nan")
        iters = int(np.max(clf.n_iter_))
        tried.append({"C": float(c), "dev_macro_f1": dev_f1, "iterations": iters})
        log.info("classify C=%g: dev macro-F1 %.4f (%d lbfgs iterations%s, %.1f s)", c, dev_f1, iters,
                 ", not converged" if iters >= max_iter else "", time.perf_counter() - t0)
        if best is None or (dev_f1 > best[0]):
            best = (dev_f1, c, clf)
    dev_f1, c, clf = best
    pred = clf.predict(xs)
    return {
        "macro_f1": macro_f1(y_test, pred),
        "accuracy": float(np.mean(pred == y_test)),
        "C": float(c),
        "dev_macro_f1": float(dev_f1),
        "tried": tried,
        "classes": int(len(clf.classes_)),
        "majority_accuracy": float(np.mean(y_test == _majority(y_train))),
        "num_train": int(len(y_train)), "num_dev": int(len(y_dev)), "num_test": int(len(y_test)),
    }


def _majority(y: np.ndarray):
    values, counts = np.unique(y, return_counts=True)
    return values[np.argmax(counts)]
