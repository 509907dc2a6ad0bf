"""kNN over tweet embeddings: exact search against brute force, FAISS against exact, EMB_DIR checks."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from coengage.errors import ArtifactError
from mining.knn import (build_faiss_index, default_nlist, exact_topk, faiss_available, faiss_topk, knn_pairs,
                         load_embeddings, normalize_rows)

sys.path.insert(0, str(Path(__file__).parent))
from mining_fixtures import planted_graph, write_embeddings  # noqa: E402


def _brute(x, k):
    """Reference: full cosine matrix, self excluded, sorted by (-cos, id)."""
    n = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = n @ n.T
    out = []
    for i in range(len(x)):
        order = sorted((j for j in range(len(x)) if j != i), key=lambda j: (-sims[i, j], j))[:k]
        out.append(order)
    return np.array(out), sims


def test_exact_topk_equals_brute_force_including_small_blocks():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    want, sims = _brute(x.astype(np.float64), 5)
    xn, zero = normalize_rows(x)
    assert not zero.any()
    for block_bytes in (4 * 300 * 7, 256 << 20):  # 7-query blocks, and one block
        ids, top = exact_topk(xn, xn, 5, query_ids=np.arange(300), block_bytes=block_bytes, progress=False)
        np.testing.assert_array_equal(ids, want)
        np.testing.assert_allclose(top, np.take_along_axis(sims, want, 1), atol=1e-5)


def test_ties_are_broken_by_id_and_duplicates_of_self_are_kept():
    x = np.array([[1, 0], [1, 0], [1, 0], [0, 1]], dtype=np.float32)  # 0, 1, 2 identical
    ids, top = exact_topk(x, x, 2, query_ids=np.arange(4), progress=False)
    assert ids[0].tolist() == [1, 2] and ids[1].tolist() == [0, 2] and ids[2].tolist() == [0, 1]
    assert np.allclose(top[:3], 1.0)


def test_fewer_tweets_than_k_pads_with_minus_one():
    x = np.eye(3, dtype=np.float32)
    ids, top = exact_topk(x, x, 5, query_ids=np.arange(3), progress=False)
    assert (ids[:, :2] >= 0).all() and (ids[:, 2:] == -1).all() and np.isneginf(top[:, 2:]).all()
    a, b, s, _ = knn_pairs(x, k=5, index="exact", progress=False)
    assert len(a) == 6 and (a != b).all()


def test_knn_pairs_skip_zero_vectors_and_respect_candidates():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 4)).astype(np.float32)
    x[7] = 0
    a, b, s, info = knn_pairs(x, k=3, index="exact", progress=False)
    assert info["zero_vectors"] == 1 and 7 not in set(a) | set(b)
    assert len(a) == 49 * 3 and (a != b).all()
    cand = np.arange(0, 50, 2)
    a, b, _, _ = knn_pairs(x, k=3, index="exact", candidates=cand, progress=False)
    assert set(a) | set(b) <= set(cand.tolist())


@pytest.mark.skipif(not faiss_available(), reason="faiss-cpu not installed (the exact path is tested above)")
@pytest.mark.parametrize("index,kwargs,min_recall", [
    ("faiss-ivf", {"nlist": 16, "nprobe": 16}, 1.0),  # every list probed: exhaustive, must equal exact
    ("faiss-ivf", {"nlist": 16, "nprobe": 4}, 0.9),
    ("faiss-hnsw", {"ef_search": 200}, 0.95),
    ("faiss-ivf", {"nlist": 16, "nprobe": 16, "pq": 8}, 0.9),
])
def test_faiss_agrees_with_exact(index, kwargs, min_recall):
    rng = np.random.default_rng(2)
    centers = rng.normal(size=(20, 32))
    x = (centers[rng.integers(0, 20, 3000)] + 0.5 * rng.normal(size=(3000, 32))).astype(np.float32)
    xn, _ = normalize_rows(x)
    ids_e, sims_e = exact_topk(xn, xn, 10, query_ids=np.arange(3000), progress=False)
    ids_f, sims_f = faiss_topk(xn, xn, 10, index=index, query_ids=np.arange(3000), progress=False, **kwargs)
    recall = np.mean([len(set(e) & set(f)) / 10 for e, f in zip(ids_e, ids_f)])
    assert recall >= min_recall
    assert not (ids_f == np.arange(3000)[:, None]).any()  # never the query itself
    # FAISS candidates are re-scored exactly: scores are true cosines of the returned ids
    np.testing.assert_allclose(sims_f, np.einsum("qd,qkd->qk", xn, xn[ids_f]), atol=1e-5)
    if min_recall == 1.0:
        np.testing.assert_allclose(sims_f, sims_e, atol=1e-5)


def test_load_embeddings_checks_fingerprint_rows_and_kind(tmp_path):
    g = planted_graph(tmp_path / "g", n_topics=2, tweets_per_topic=10, users_per_topic=5, engagements_per_user=4)
    write_embeddings(tmp_path / "e", g, np.ones((g.num_tweets, 4)))
    x, manifest = load_embeddings(tmp_path / "e", g)
    assert x.shape == (g.num_tweets, 4) and manifest["kind"] == "coengage.embeddings"
    write_embeddings(tmp_path / "other", g, np.ones((g.num_tweets, 4)), fingerprint="0123456789abcdef")
    with pytest.raises(ArtifactError, match="rebuild"):
        load_embeddings(tmp_path / "other", g)
    write_embeddings(tmp_path / "short", g, np.ones((g.num_tweets - 1, 4)))
    with pytest.raises(ArtifactError, match="rows"):
        load_embeddings(tmp_path / "short", g)
    with pytest.raises(ArtifactError, match="not an embeddings directory"):
        load_embeddings(tmp_path / "g" / "csr", g)
    with pytest.raises(ArtifactError, match="expected a 'coengage.embeddings'"):
        load_embeddings(tmp_path / "g", g)


def test_non_finite_embeddings_are_refused():
    x = np.ones((4, 3), dtype=np.float32)
    x[2, 1] = np.nan
    with pytest.raises(ArtifactError, match="row 2"):
        normalize_rows(x)


@pytest.mark.skipif(not faiss_available(), reason="faiss-cpu not installed (the exact path is tested above)")
def test_knn_pairs_report_the_faiss_search_parameters_in_effect():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2000, 16)).astype(np.float32)
    *_, info = knn_pairs(x, k=5, index="faiss-ivf", progress=False)
    assert info["index"] == "faiss-ivf" and info["nlist"] == default_nlist(2000) and info["nprobe"] == min(32, info["nlist"])
    *_, info = knn_pairs(x, k=5, index="faiss-ivf", nlist=20, nprobe=3, progress=False)
    assert (info["nlist"], info["nprobe"]) == (20, 3)
    *_, info = knn_pairs(x, k=5, index="faiss-hnsw", ef_search=64, progress=False)
    assert info["ef_search"] == 64 and "nprobe" not in info


@pytest.mark.skipif(not faiss_available(), reason="faiss-cpu not installed (the exact path is tested above)")
def test_faiss_results_do_not_depend_on_the_query_batches_or_their_order():
    # with more queries than a batch, queries are searched in order of their nearest IVF list
    rng = np.random.default_rng(4)
    x, _ = normalize_rows(rng.normal(size=(3000, 16)).astype(np.float32))
    idx = build_faiss_index(x, "faiss-ivf", nlist=30)
    one = faiss_topk(x, x, 7, query_ids=np.arange(3000), nprobe=5, progress=False, built=idx)
    many = faiss_topk(x, x, 7, query_ids=np.arange(3000), nprobe=5, progress=False, built=idx, batch=128)
    assert np.array_equal(one[0], many[0]) and np.array_equal(one[1], many[1])
    assert not (many[0] == np.arange(3000)[:, None]).any() and (many[0] >= 0).all()
