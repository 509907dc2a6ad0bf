"""The co-engagement kernel against a naive Python reference and scipy's AᵀA: exactly equal."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest
import scipy.sparse as sp

from mining.coengagement import coengagement_pairs


def _csr(rows, cols, n_rows, etypes, times):
    order = np.lexsort((etypes, cols, rows))
    indptr = np.zeros(n_rows + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return indptr, cols[order].astype(np.int32), times[order].astype(np.int64)


def random_graph(seed, n_users=60, n_tweets=80, n_edges=900, n_types=2, t_max=5_000):
    """A small random multi-type graph: (tu arrays, ut arrays, edge list)."""
    rng = np.random.default_rng(seed)
    # most users engage a little, a few heavy users a lot (so that the degree cap bites)
    u = np.where(rng.random(n_edges) < 0.25, rng.integers(0, 4, n_edges), rng.integers(0, n_users, n_edges))
    t = rng.integers(0, n_tweets, n_edges)
    e = rng.integers(0, n_types, n_edges)
    tm = rng.integers(0, t_max, n_edges)
    key, first = np.unique((u * n_tweets + t) * n_types + e, return_index=True)
    u, t, e, tm = key // (n_tweets * n_types), (key // n_types) % n_tweets, key % n_types, tm[first]
    tu = _csr(t, u, n_tweets, e, tm)
    ut = _csr(u, t, n_users, e, tm)
    return tu, ut, list(zip(u.tolist(), t.tolist(), tm.tolist()))


def reference(edges, n_tweets, cap, window, min_count, normalize):
    """Straight from the definitions in mining/coengagement.py, with dicts and sets."""
    deg = defaultdict(int)
    times = defaultdict(list)  # (u, t) -> engagement times
    for u, t, tm in edges:
        deg[u] += 1
        times[(u, t)].append(tm)
    kept = {u for u in deg if deg[u] <= cap}
    users_of = defaultdict(set)
    for (u, t) in times:
        if u in kept:
            users_of[t].add(u)
    n = {t: len(users_of[t]) for t in range(n_tweets)}
    out = {}
    for a in range(n_tweets):
        for b in range(n_tweets):
            if a == b:
                continue
            shared = sorted(users_of[a] & users_of[b])
            if window is not None:
                shared = [u for u in shared
                          if any(abs(x - y) <= window for x in times[(u, a)] for y in times[(u, b)])]
            c = len(shared)
            if c < min_count:
                continue
            if normalize == "count":
                s = float(c)
            elif normalize == "cosine":
                s = c / math.sqrt(float(n[a]) * float(n[b]))
            elif normalize == "jaccard":
                s = c / float(n[a] + n[b] - c)
            else:
                s = 0.0
                for u in shared:  # ascending user id, as the kernel sums
                    # math.log2 is the C library's log2, as in the Numba kernel; numpy's
                    # vectorised np.log2 may differ in the last bit on AVX-512 machines
                    s += 1.0 / math.log2(2.0 + float(deg[u]))
            out[(a, b)] = s
    return out


def as_dict(a, b, s):
    assert a.dtype == np.int32 and b.dtype == np.int32 and s.dtype == np.float64
    d = dict(zip(zip(a.tolist(), b.tolist()), s.tolist()))
    assert len(d) == len(a), "a pair was emitted twice"
    return d


@pytest.mark.parametrize("normalize", ["count", "cosine", "jaccard", "swing"])
@pytest.mark.parametrize("cap,window", [(10_000, None), (12, None), (12, 1500), (10_000, 200)])
def test_matches_reference_exactly(normalize, cap, window):
    tu, ut, edges = random_graph(1)
    a, b, s = coengagement_pairs(*tu, *ut, max_user_degree=cap, window_s=window, min_count=2,
                                 normalize=normalize, progress=False)
    got = as_dict(a, b, s)
    want = reference(edges, len(tu[0]) - 1, cap, window, 2, normalize)
    assert len(want) > 20  # the fixture exercises something
    assert got == want  # exact, float scores included


def test_min_count_and_cap_change_the_result():
    tu, ut, edges = random_graph(2)
    n_t = len(tu[0]) - 1
    for m in (1, 2, 3):
        got = as_dict(*coengagement_pairs(*tu, *ut, max_user_degree=15, min_count=m, progress=False))
        assert got == reference(edges, n_t, 15, None, m, "count")
        assert min(got.values()) >= m
    loose = as_dict(*coengagement_pairs(*tu, *ut, max_user_degree=10_000, min_count=1, progress=False))
    capped = as_dict(*coengagement_pairs(*tu, *ut, max_user_degree=15, min_count=1, progress=False))
    assert len(capped) < len(loose)


def test_counts_equal_scipy_gram_matrix():
    tu, ut, edges = random_graph(3, n_users=200, n_tweets=300, n_edges=4000)
    cap = 25
    u = np.array([e[0] for e in edges])
    t = np.array([e[1] for e in edges])
    deg = np.bincount(u, minlength=200)
    keep = deg[u] <= cap
    A = sp.csr_matrix((np.ones(keep.sum()), (u[keep], t[keep])), shape=(200, 300))
    A.data[:] = 1.0  # binary: duplicate (user, tweet) of several types count once
    G = (A.T @ A).tocoo()
    off = (G.row != G.col) & (G.data >= 2)
    want = {(int(r), int(c)): float(v) for r, c, v in zip(G.row[off], G.col[off], G.data[off])}
    got = as_dict(*coengagement_pairs(*tu, *ut, max_user_degree=cap, min_count=2, progress=False))
    assert got == want


def test_top_k_keeps_best_scores_with_ties_by_smaller_id():
    tu, ut, edges = random_graph(4)
    full = reference(edges, len(tu[0]) - 1, 10_000, None, 1, "cosine")
    a, b, s = coengagement_pairs(*tu, *ut, max_user_degree=10_000, min_count=1, normalize="cosine", top_k=3,
                                 progress=False)
    by_a = defaultdict(list)
    for (x, y), v in full.items():
        by_a[x].append((-v, y))
    want = []
    for x in sorted(by_a):
        want += [(x, y, -v) for v, y in sorted(by_a[x])[:3]]
    assert list(zip(a.tolist(), b.tolist(), s.tolist())) == want


def test_small_blocks_and_thread_counts_give_identical_output():
    import numba

    tu, ut, _ = random_graph(5, n_users=150, n_tweets=200, n_edges=3000)
    base = coengagement_pairs(*tu, *ut, normalize="swing", window_s=2000, progress=False)
    tiny_blocks = coengagement_pairs(*tu, *ut, normalize="swing", window_s=2000, progress=False, block_slots=7)
    for x, y in zip(base, tiny_blocks):
        assert x.tobytes() == y.tobytes()
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("only one Numba thread available: thread-count independence cannot be shown here")
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = coengagement_pairs(*tu, *ut, normalize="swing", window_s=2000, progress=False)
    finally:
        numba.set_num_threads(before)
    for x, y in zip(base, one):
        assert x.tobytes() == y.tobytes()


def test_works_on_a_written_graph_artifact(tmp_path):
    from graph.writer import write_graph

    # tweets 0,1,2 share users 0 and 1 (two types each for user 0); tweet 3 only via user 2
    users = [0, 0, 0, 0, 1, 1, 1, 2, 2]
    tweets = [0, 0, 1, 2, 0, 1, 2, 3, 0]
    etypes = [0, 1, 0, 0, 0, 1, 0, 0, 0]
    g = write_graph(tmp_path / "g", user_ids=["u0", "u1", "u2"], tweet_ids=["t0", "t1", "t2", "t3"],
                    users=users, tweets=tweets, etypes=etypes, times=[0] * 9, relations=["fav", "rt"],
                    write_dgl_binary=False)
    tu, ut = g.csr("tweet_user"), g.csr("user_tweet")
    a, b, s = coengagement_pairs(tu.indptr, tu.indices, tu.time, ut.indptr, ut.indices, ut.time, progress=False)
    assert as_dict(a, b, s) == {(0, 1): 2.0, (0, 2): 2.0, (1, 0): 2.0, (1, 2): 2.0, (2, 0): 2.0, (2, 1): 2.0}


@pytest.mark.parametrize("kwargs", [{"normalize": "pmi"}, {"min_count": 0}, {"window_s": -1},
                                    {"top_k": 0}, {"max_user_degree": 0}])
def test_bad_parameters_are_refused(kwargs):
    tu, ut, _ = random_graph(6, n_edges=100)
    with pytest.raises(ValueError):
        coengagement_pairs(*tu, *ut, progress=False, **kwargs)


def test_inconsistent_arrays_are_refused():
    tu, ut, _ = random_graph(7, n_edges=100)
    with pytest.raises(ValueError, match="tu_indices"):
        coengagement_pairs(tu[0], tu[1] + 1000, tu[2], *ut, progress=False)


def test_spark_swing_weights_equal_the_kernel_bit_for_bit():
    """The Spark engine's per-user weights are the local kernel's, to the last bit, on any CPU."""
    from numba import njit

    from mining.spark.coengage import swing_weights

    @njit
    def kernel_weights(d):  # the expression of mining/coengagement.py, compiled the same way
        out = np.empty(len(d))
        for i in range(len(d)):
            out[i] = 1.0 / np.log2(2.0 + d[i])
        return out

    d = np.arange(0, 200_000, dtype=np.int64)
    assert np.array_equal(swing_weights(d), kernel_weights(d))
