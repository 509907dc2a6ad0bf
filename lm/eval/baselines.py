"""Baseline tweet embeddings evaluated with the same heads: TF-IDF (+ SVD) and random vectors.

* TF-IDF: word uni- and bigrams, sublinear tf, fit on the **train-split texts only**; the sparse
  matrix is reduced by a truncated SVD (also fit on train rows) to ``dim`` dense columns so the
  two-tower, logistic-regression and retrieval heads take it like any other embedding (LSA).
* random: i.i.d. Gaussian vectors, seeded; the chance level of every head.
"""

from __future__ import annotations

import numpy as np


def tfidf_embeddings(texts, train_rows: np.ndarray, dim: int = 256, seed: int = 0, max_features: int = 100_000) -> np.ndarray:
    """float32 [n, min(dim, rank)] LSA embeddings of ``texts``, fit on ``texts[train_rows]``."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [str(t) for t in texts]
    train_rows = np.asarray(train_rows, dtype=np.int64)
    vec = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2, max_features=max_features, dtype=np.float32)
    try:
        vec.fit([texts[i] for i in train_rows])
    except ValueError:  # too few documents for min_df=2
        vec = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), max_features=max_features, dtype=np.float32)
        vec.fit([texts[i] for i in train_rows])
    m = vec.transform(texts)
    k = int(min(dim, m.shape[1] - 1, len(train_rows) - 1))
    if k < 1:
        return np.asarray(m.todense(), dtype=np.float32)
    svd = TruncatedSVD(n_components=k, random_state=seed, algorithm="randomized", n_iter=5)
    svd.fit(m[train_rows])
    return svd.transform(m).astype(np.float32)


def random_embeddings(n: int, dim: int = 256, seed: int = 0) -> np.ndarray:
    """float32 [n, dim] standard normal vectors."""
    return np.random.default_rng([seed, 7]).standard_normal((n, dim)).astype(np.float32)
