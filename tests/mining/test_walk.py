"""The random-walk kernel: its visit frequencies against the exact expectation, determinism, cap, weights."""

from __future__ import annotations

import numpy as np
import pytest

from mining.walk import _kept, walk_pairs

# A small multi-type graph: (user, tweet, etype). User 7 is heavy (degree 9 > cap 5 below);
# tweet 9 is reachable only through user 7.
EDGES = [
    (0, 0, 0), (0, 1, 0), (0, 1, 1), (0, 2, 2),
    (1, 0, 1), (1, 3, 0),
    (2, 1, 0), (2, 2, 0), (2, 3, 2), (2, 4, 1),
    (3, 4, 0), (3, 5, 0),
    (4, 5, 1), (4, 6, 0), (4, 0, 2),
    (5, 6, 0), (5, 7, 0), (5, 8, 1),
    (6, 8, 0), (6, 2, 1),
    (7, 0, 0), (7, 1, 0), (7, 2, 0), (7, 3, 0), (7, 4, 0), (7, 5, 0), (7, 6, 0), (7, 8, 0), (7, 9, 0),
]
N_USERS, N_TWEETS = 8, 10
WEIGHTS = np.array([1.0, 0.5, 2.0], dtype=np.float32)


def arrays(edges=EDGES, n_users=N_USERS, n_tweets=N_TWEETS):
    e = np.array(edges, dtype=np.int64)
    u, t, r = e[:, 0], e[:, 1], e[:, 2]

    def csr(rows, cols, n):
        order = np.lexsort((r, cols, rows))
        indptr = np.zeros(n + 1, np.int64)
        np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
        return indptr, cols[order].astype(np.int32), r[order].astype(np.int8)

    return csr(t, u, n_tweets), csr(u, t, n_users)


def expected_visits(q, weights, cap, mode, seed, length, restart_prob, edges=EDGES, n_users=N_USERS,
                    n_tweets=N_TWEETS):
    """Expected visits per walk to every tweet, from transition matrices (the reference)."""
    deg = np.bincount([u for u, _, _ in edges], minlength=n_users)

    def kept(u, t):
        # the down-sampled subset is defined by the kernel's keep hash; the rest is the reference's
        if deg[u] <= cap:
            return True
        return mode == "sample" and _kept(seed, u, t, int(deg[u]), cap, 1)

    P_tu = np.zeros((n_tweets, n_users))
    P_ut = np.zeros((n_users, n_tweets))
    for u, t, r in edges:
        if kept(u, t):
            P_tu[t, u] += weights[r]
            P_ut[u, t] += weights[r]
    P_tu /= np.maximum(P_tu.sum(1, keepdims=True), 1e-300)
    P_ut /= np.maximum(P_ut.sum(1, keepdims=True), 1e-300)
    hop = P_tu @ P_ut
    x = np.zeros(n_tweets)
    x[q] = 1.0
    visits = np.zeros(n_tweets)
    alive = 1.0
    for _ in range(length):
        x = x @ hop
        visits += alive * x
        alive *= 1.0 - restart_prob
    visits[q] = 0.0
    return visits


def run(tu, ut, weights=WEIGHTS, **kw):
    kw.setdefault("progress", False)
    return walk_pairs(*tu, *ut, weights, **kw)


@pytest.mark.parametrize("mode", ["skip", "sample"])
@pytest.mark.parametrize("inflight", [1, 8])
def test_visit_frequencies_match_the_exact_expectation(mode, inflight):
    tu, ut = arrays()
    n_walks, length, p, cap, seed = 20_000, 3, 0.3, 5, 11
    queries = np.array([0, 2, 5, 8])
    a, b, s = run(tu, ut, queries=queries, walks_per_query=n_walks, walk_length=length, restart_prob=p,
                  max_user_degree=cap, degree_cap_mode=mode, top_k=N_TWEETS, min_visits=1, seed=seed,
                  walkers_in_flight=inflight)
    for q in queries:
        want = expected_visits(q, WEIGHTS.astype(np.float64), cap, mode, seed, length, p)
        got = np.zeros(N_TWEETS)
        got[b[a == q]] = s[a == q] / n_walks
        tol = 5 * np.sqrt(length * want / n_walks) + 2e-3
        assert np.all(np.abs(got - want) <= tol), (q, got.round(4), want.round(4))
        assert np.all(got[want == 0] == 0)  # never a tweet the walk cannot reach


def test_sample_mode_reaches_what_skip_mode_cannot():
    tu, ut = arrays()
    skip = run(tu, ut, max_user_degree=5, degree_cap_mode="skip", min_visits=1, top_k=N_TWEETS)
    loose = run(tu, ut, max_user_degree=100, min_visits=1, top_k=N_TWEETS)
    assert 9 not in skip[0] and 9 not in skip[1]  # tweet 9 hangs only on the heavy user 7
    assert 9 in loose[0] and 9 in loose[1]
    # with down-sampling, user 7 keeps about 5 of its 9 engagements; walks cross it
    sample_reach = set()
    for seed in range(6):
        a, b, _ = run(tu, ut, max_user_degree=5, degree_cap_mode="sample", min_visits=1, top_k=N_TWEETS, seed=seed)
        sample_reach |= set(zip(a.tolist(), b.tolist()))
    assert (9, 9) not in sample_reach
    assert any(x == 9 or y == 9 for x, y in sample_reach)


def test_degree_cap_leaves_a_tweet_reachable_only_through_a_heavy_user_without_pairs():
    # query 0's only engager is user 0, who engaged 4 tweets: above cap 3 -> no walk from 0,
    # and 0 is never visited from elsewhere
    edges = [(0, 0, 0), (0, 1, 0), (0, 2, 0), (0, 3, 0), (1, 1, 0), (1, 2, 0), (2, 2, 0), (2, 3, 0)]
    tu, ut = arrays(edges, 3, 4)
    w = np.ones(1, np.float32)
    a, b, _ = run(tu, ut, w, max_user_degree=3, min_visits=1)
    assert len(a) > 0 and 0 not in a and 0 not in b
    a, b, _ = run(tu, ut, w, max_user_degree=4, min_visits=1)
    assert 0 in a and 0 in b


def test_type_weights_bias_the_steps():
    # q=0 is faved by user 0 (type 0) and retweeted by user 1 (type 1); user 0 also faved tweet 1,
    # user 1 also retweeted tweet 2. One hop: P(visit 1) = w0/(w0+w1) / 2, P(visit 2) = w1/(w0+w1) / 2
    edges = [(0, 0, 0), (0, 1, 0), (1, 0, 1), (1, 2, 1)]
    tu, ut = arrays(edges, 2, 3)
    n = 20_000
    counts = {}
    for w in ([1.0, 1.0], [1.0, 0.25]):
        a, b, s = run(tu, ut, np.array(w, np.float32), queries=[0], walks_per_query=n, walk_length=1,
                      restart_prob=0.0, min_visits=1, seed=3)
        counts[tuple(w)] = dict(zip(b.tolist(), s.tolist()))
    even, biased = counts[(1.0, 1.0)], counts[(1.0, 0.25)]
    assert abs(even[1] / even[2] - 1.0) < 0.1
    assert 3.4 < biased[1] / biased[2] < 4.7  # expected 4
    assert abs(biased[1] / n - 0.4) < 0.015


def test_zero_weight_types_are_never_walked():
    edges = [(0, 0, 0), (0, 1, 0), (1, 0, 1), (1, 2, 1)]
    tu, ut = arrays(edges, 2, 3)
    a, b, _ = run(tu, ut, np.array([1.0, 0.0], np.float32), min_visits=1)
    assert set(b.tolist()) == {0, 1} and 2 not in a


def _bigger_graph(seed=0, n_users=400, n_tweets=600, n_edges=6000):
    rng = np.random.default_rng(seed)
    u = np.where(rng.random(n_edges) < 0.2, rng.integers(0, 10, n_edges), rng.integers(0, n_users, n_edges))
    t = rng.integers(0, n_tweets, n_edges)
    r = rng.integers(0, 3, n_edges)
    key = np.unique((u * n_tweets + t) * 3 + r)
    edges = list(zip((key // (3 * n_tweets)).tolist(), ((key // 3) % n_tweets).tolist(), (key % 3).tolist()))
    return arrays(edges, n_users, n_tweets)


@pytest.mark.parametrize("mode", ["skip", "sample"])
def test_same_seed_is_byte_identical_whatever_threads_walkers_and_blocks(mode):
    import numba

    tu, ut = _bigger_graph()
    kw = dict(max_user_degree=30, degree_cap_mode=mode, seed=42)
    base = run(tu, ut, walkers_in_flight=8, **kw)
    assert len(base[0]) > 1000
    variants = [run(tu, ut, walkers_in_flight=1, **kw), run(tu, ut, walkers_in_flight=3, **kw)]
    from mining.walk import run_walks

    variants.append(run_walks(*tu, *ut, WEIGHTS, progress=False, block_size=37, **kw)[:3])
    if numba.config.NUMBA_NUM_THREADS >= 2:
        before = numba.get_num_threads()
        try:
            numba.set_num_threads(1)
            variants.append(run(tu, ut, **kw))
        finally:
            numba.set_num_threads(before)
    for v in variants:
        for x, y in zip(base, v):
            assert x.tobytes() == y.tobytes()
    other = run(tu, ut, max_user_degree=30, degree_cap_mode=mode, seed=43)
    assert other[1].tobytes() != base[1].tobytes() or other[2].tobytes() != base[2].tobytes()


def test_output_respects_top_k_min_visits_and_order():
    tu, ut = _bigger_graph(1)
    a, b, s = run(tu, ut, top_k=5, min_visits=3, seed=1)
    assert a.dtype == np.int32 and b.dtype == np.int32 and s.dtype == np.float64
    assert len(a) > 100
    assert np.all(a != b) and np.all(s >= 3) and np.all(s == np.round(s))
    assert np.all(np.diff(a) >= 0)  # grouped by query, in query order
    for q in np.unique(a):
        sq, bq = s[a == q], b[a == q]
        assert len(sq) <= 5
        order = np.lexsort((bq, -sq))
        assert np.array_equal(order, np.arange(len(sq)))  # best first, ties by smaller id
    # a larger top_k and smaller min_visits only add pairs
    a2, b2, _ = run(tu, ut, top_k=50, min_visits=2, seed=1)
    assert set(zip(a.tolist(), b.tolist())) <= set(zip(a2.tolist(), b2.tolist()))


def test_works_on_a_written_graph_artifact(tmp_path):
    from graph.writer import write_graph

    e = np.array(EDGES)
    g = write_graph(tmp_path / "g", user_ids=[f"u{i}" for i in range(N_USERS)],
                    tweet_ids=[f"t{i}" for i in range(N_TWEETS)], users=e[:, 0], tweets=e[:, 1], etypes=e[:, 2],
                    times=np.zeros(len(e), np.int64), relations=["fav", "rt", "reply"],
                    type_weights={"fav": 1.0, "rt": 0.5, "reply": 2.0}, write_dgl_binary=False)
    tu, ut = g.csr("tweet_user"), g.csr("user_tweet")
    got = walk_pairs(tu.indptr, tu.indices, tu.etype, ut.indptr, ut.indices, ut.etype, g.type_weights,
                     max_user_degree=5, progress=False)
    want = run(*arrays(), max_user_degree=5)
    for x, y in zip(got, want):
        assert x.tobytes() == y.tobytes()


@pytest.mark.parametrize("kwargs", [{"degree_cap_mode": "drop"}, {"restart_prob": 1.0}, {"walk_length": 0},
                                    {"top_k": 0}, {"walkers_in_flight": 0}, {"queries": [10]},
                                    {"min_visits": 0}, {"seed": -1}])
def test_bad_parameters_are_refused(kwargs):
    tu, ut = arrays()
    with pytest.raises(ValueError):
        run(tu, ut, **kwargs)


@pytest.mark.parametrize("weights", [[1.0, -1.0, 1.0], [0.0, 0.0, 0.0], [1.0]])
def test_bad_type_weights_are_refused(weights):
    tu, ut = arrays()
    with pytest.raises(ValueError, match="type_weights|etype"):
        run(tu, ut, np.array(weights, np.float32))


@pytest.mark.parametrize("mode", ["skip", "sample"])
def test_walker_pool_equals_the_reference_loop_under_slot_reuse_restarts_and_fallbacks(mode):
    # many queries with few walks each and frequent restarts: visit slots are reused while other
    # queries' walks are still in flight; weight 0.02 makes long rejection runs (which end in the
    # exact fallback scan at tweets whose edges are all of types 1 and 2)
    tu, ut = _bigger_graph(2)
    w = np.array([1.0, 0.02, 0.0], np.float32)
    kw = dict(walks_per_query=3, walk_length=5, restart_prob=0.7, max_user_degree=25, degree_cap_mode=mode,
              min_visits=1, top_k=7, seed=5)
    ref = run(tu, ut, w, walkers_in_flight=1, **kw)
    assert len(ref[0]) > 500
    for W in (2, 5, 64, 257):
        got = run(tu, ut, w, walkers_in_flight=W, **kw)
        for x, y in zip(ref, got):
            assert x.tobytes() == y.tobytes(), W


def test_kept_lists_hold_exactly_the_kept_engagements_in_row_order():
    from mining.walk import _kept_lists

    tu, ut = _bigger_graph(3)
    ut_indptr, ut_indices, ut_etype = ut
    deg = np.diff(ut_indptr)
    cap, seed = 20, 9
    capped = np.flatnonzero(deg > cap).astype(np.int64)
    assert len(capped) >= 5
    ptr, tweet, etype = _kept_lists(capped, ut_indptr, ut_indices, ut_etype, seed, cap)
    for i, u in enumerate(capped):
        row = range(ut_indptr[u], ut_indptr[u + 1])
        want = [j for j in row if _kept(seed, int(u), int(ut_indices[j]), int(deg[u]), cap, 1)]
        assert tweet[ptr[i]:ptr[i + 1]].tolist() == ut_indices[want].tolist()
        assert etype[ptr[i]:ptr[i + 1]].tolist() == ut_etype[want].tolist()
    # down-sampling keeps about cap of deg(u) engagements per user
    assert abs((np.diff(ptr) / cap).mean() - 1.0) < 0.25


def test_a_query_whose_users_are_all_over_the_cap_gets_no_pairs_in_the_pool_either():
    edges = [(0, 0, 0), (0, 1, 0), (0, 2, 0), (0, 3, 0), (1, 1, 0), (1, 2, 0), (2, 2, 0), (2, 3, 0)]
    tu, ut = arrays(edges, 3, 4)
    w = np.ones(1, np.float32)
    for W in (1, 16):
        a, b, _ = run(tu, ut, w, max_user_degree=3, min_visits=1, walkers_in_flight=W, queries=[0, 1, 2, 3, 0])
        assert 0 not in a and 0 not in b and len(a) > 0


def test_type_counts_and_compaction_helpers_match_numpy():
    from mining.walk import _compact, _type_counts

    rng = np.random.default_rng(0)
    et = rng.integers(0, 3, 10_007).astype(np.int8)
    assert np.array_equal(_type_counts(et, 4), np.bincount(et, minlength=4))
    assert np.array_equal(_type_counts(et[:5], 3), np.bincount(et[:5], minlength=3))  # fewer edges than chunks
    top_k, n = 4, rng.integers(0, 5, 50)
    b = rng.integers(0, 1000, 50 * top_k).astype(np.int32)
    s = rng.random(50 * top_k)
    keep = (np.arange(top_k)[None, :] < n[:, None]).ravel()
    want_b, want_s = b[keep], s[keep]
    k = _compact(n, top_k, b, s)
    assert k == n.sum() and np.array_equal(b[:k], want_b) and np.array_equal(s[:k], want_s)


def test_a_type_present_in_the_weights_but_absent_from_the_graph_does_not_disable_the_uniform_path():
    # all edges have type 0 and 1, weights differ only for the absent type 2: same walks as uniform weights
    tu, ut = _bigger_graph(1)
    tu = (tu[0], tu[1], (tu[2] % 2).astype(np.int8))
    ut = (ut[0], ut[1], (ut[2] % 2).astype(np.int8))
    a1, b1, s1 = run(tu, ut, weights=np.array([1.0, 1.0, 0.3]), seed=3)
    a2, b2, s2 = run(tu, ut, weights=np.array([1.0, 1.0, 1.0]), seed=3)
    assert len(a1) > 0 and np.array_equal(a1, a2) and np.array_equal(b1, b2) and np.array_equal(s1, s2)
