"""Benchmark of the mining kernels, side by side with baselines in the same process.

Sections (``--sections``, comma-separated; each is one function, results are merged into
``benchmarks/results/mining.json`` so other sections' figures stay):

* ``walk``: our walk kernel (the walker pool at several sizes and the sequential reference loop) vs
  ``dgl.sampling.random_walk`` with the same metapath, walk count and length, vs a plain-Python
  walker on a small subgraph, and vs the measured random-gather ceiling of this machine, on a
  power-law graph far larger than the cache. Wall-clock steps/s and steps per CPU-second (less
  distorted by other jobs on a shared machine; with several threads it includes spin-waiting).
* ``coengage``: our co-engagement kernel vs scipy ``AᵀA`` with the same degree cap
  (identical counts asserted), time and peak extra memory.
* ``growth``: time and peak memory of both kernels at several edge counts.
* ``quality``: planted-topic synthetic graph: topic purity of the pairs and coverage.
* ``knn``: owned by the kNN module (mining/knn.py); this file leaves a hook.

A *step* is one edge traversal (tweet -> user or user -> tweet); a *hop* is two steps.
Run: ``.venv/bin/python benchmarks/bench_mining.py [--quick] [--sections walk,coengage,...]``.
dgl is imported here only (never in mining/).
"""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coengage.artifacts import write_json  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "mining.json"


# ------------------------------------------------------------------------------------------
# measurement helpers
# ------------------------------------------------------------------------------------------


def rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def measure(fn, *args, **kwargs):
    """Run fn; return (result, seconds, peak RSS growth over the start in bytes, sampled every 5 ms)."""
    gc.collect()
    base = rss()
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.005)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t0 = time.perf_counter()
    try:
        out = fn(*args, **kwargs)
    finally:
        dt = time.perf_counter() - t0
        stop.set()
        th.join()
    peak[0] = max(peak[0], rss())
    return out, dt, peak[0] - base


def fmt_rate(x):
    return f"{x / 1e6:8.1f}M/s"


def table(rows, header):
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
    print()


# ------------------------------------------------------------------------------------------
# graphs
# ------------------------------------------------------------------------------------------


def power_law_graph(n_users, n_tweets, n_edges, seed=0, n_types=3, user_alpha=2.0, tweet_alpha=2.0, times=True):
    """Random bipartite graph with power-law degrees on both sides, ids shuffled (no locality).

    Endpoint i is drawn with probability ~ rank^-1/alpha-ish (inverse-CDF of u^alpha), then
    mapped through a random permutation so popular nodes are scattered through the arrays.
    Duplicate (user, tweet) pairs are merged; each edge gets a type in [0, n_types) and a time.
    Returns dict with tu_* and ut_* arrays.
    """
    rng = np.random.default_rng(seed)
    m = int(n_edges * 1.08)  # a few duplicates get merged
    u = rng.permutation(n_users)[(n_users * rng.random(m) ** user_alpha).astype(np.int64)]
    t = rng.permutation(n_tweets)[(n_tweets * rng.random(m) ** tweet_alpha).astype(np.int64)]
    key = np.unique(u.astype(np.int64) * n_tweets + t)
    del u, t
    if len(key) > n_edges:
        key = np.sort(rng.choice(key, n_edges, replace=False))
    u = (key // n_tweets).astype(np.int32)
    t = (key % n_tweets).astype(np.int32)
    del key
    e = rng.choice(n_types, len(u), p=[0.7, 0.2, 0.1][:n_types] if n_types == 3 else None).astype(np.int8)
    tm = rng.integers(0, 30 * 86400, len(u)) if times else np.zeros(len(u), np.int64)
    ut_indptr = np.zeros(n_users + 1, np.int64)
    np.cumsum(np.bincount(u, minlength=n_users), out=ut_indptr[1:])
    order = np.argsort(t, kind="stable")  # stable keeps users ascending within a tweet
    tu_indptr = np.zeros(n_tweets + 1, np.int64)
    np.cumsum(np.bincount(t, minlength=n_tweets), out=tu_indptr[1:])
    g = dict(ut_indptr=ut_indptr, ut_indices=t, ut_etype=e, ut_time=tm,
             tu_indptr=tu_indptr, tu_indices=u[order], tu_etype=e[order], tu_time=tm[order])
    g["n_users"], g["n_tweets"], g["n_edges"] = n_users, n_tweets, len(u)
    return g


def walk_args(g):
    return (g["tu_indptr"], g["tu_indices"], g["tu_etype"], g["ut_indptr"], g["ut_indices"], g["ut_etype"])


def co_args(g):
    return (g["tu_indptr"], g["tu_indices"], g["tu_time"], g["ut_indptr"], g["ut_indices"], g["ut_time"])


def describe(g):
    du = np.diff(g["ut_indptr"])
    dt = np.diff(g["tu_indptr"])
    return {"users": g["n_users"], "tweets": g["n_tweets"], "edges": g["n_edges"],
            "max_user_degree": int(du.max()), "max_tweet_degree": int(dt.max()),
            "users_over_100": int((du > 100).sum()), "edges_of_users_over_100": int(du[du > 100].sum()),
            "bytes_csr": int(sum(g[k].nbytes for k in g if isinstance(g[k], np.ndarray)))}


# ------------------------------------------------------------------------------------------
# walk
# ------------------------------------------------------------------------------------------


def gather_ceiling(indices, indptr, n=1 << 26):
    """The machine's random-gather rate over ``indices`` (an int32 array as large as the walk's).

    Independent random int32 gathers, indices from a counter hash mapped by multiply-shift (no
    division), at the current thread count; measured as a plain parallel loop (the CPU overlaps
    the misses by itself) and with explicit software prefetch 16, 32 and 64 gathers ahead; the
    ceiling is the best of these. Also (indptr -> indices) dependent chains/s, one step of a
    plain walker. Returns ``(best gathers/s, chains/s, {variant: (gathers/s, per CPU-second)})``.
    """
    from numba import njit, prange

    from mining.rng import prefetch

    @njit(inline="always")
    def at(i, m):
        z = np.uint64(i) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(31))) * np.uint64(0xBF58476D1CE4E5B9)
        return np.int64(((z >> np.uint64(32)) * m) >> np.uint64(32))

    @njit(parallel=True, nogil=True, cache=True)
    def gathers(arr, n):
        m = np.uint64(len(arr))
        s = 0
        for i in prange(n):
            s += arr[at(i, m)]
        return s

    @njit(parallel=True, nogil=True, cache=True)
    def gathers_prefetched(arr, n, ahead):
        m = np.uint64(len(arr))
        s = 0
        n_chunks = 64
        for c in prange(n_chunks):
            lo, hi = n * c // n_chunks, n * (c + 1) // n_chunks
            for i in range(lo, min(lo + ahead, hi)):
                prefetch(arr, at(i, m))
            for i in range(lo, hi):
                if i + ahead < hi:
                    prefetch(arr, at(i + ahead, m))
                s += arr[at(i, m)]
        return s

    @njit(parallel=True, nogil=True, cache=True)
    def chains(indptr, arr, n):
        m = np.uint64(len(indptr) - 1)
        s = 0
        for i in prange(n):
            r = at(i, m)
            lo = indptr[r]
            hi = indptr[r + 1]
            if hi > lo:
                s += arr[lo + at(i ^ 0x5555, np.uint64(hi - lo))]
        return s

    variants = {"plain": lambda: gathers(indices, n)}
    for ahead in (16, 32, 64):
        variants[f"prefetch {ahead} ahead"] = lambda ahead=ahead: gathers_prefetched(indices, n, ahead)
    gathers(indices, 1000), gathers_prefetched(indices, 1000, 16), chains(indptr, indices, 1000)  # compile
    rates = {}
    for _ in range(3):
        for name, fn in variants.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            old = rates.get(name, (0.0, 0.0))
            rates[name] = (max(old[0], n / dt), max(old[1], n / dc))
    best_c = 0.0
    for _ in range(2):
        t0 = time.perf_counter(); chains(indptr, indices, n); best_c = max(best_c, n / (time.perf_counter() - t0))
    return max(r[0] for r in rates.values()), best_c, rates


def python_walker(g_small, queries, n_walks, length, seed=0):
    """Plain-Python walks over networkx adjacency (the slow baseline), returns hops/s."""
    import random

    import networkx as nx

    G = nx.Graph()
    tu_indptr, tu_indices = g_small["tu_indptr"], g_small["tu_indices"]
    for t in range(g_small["n_tweets"]):
        for u in tu_indices[tu_indptr[t]:tu_indptr[t + 1]]:
            G.add_edge(("t", t), ("u", int(u)))
    nbrs = {n: list(G.adj[n]) for n in G}
    rnd = random.Random(seed)
    hops = 0
    t0 = time.perf_counter()
    for q in queries:
        for _ in range(n_walks):
            node = ("t", int(q))
            if node not in nbrs:
                break
            for _ in range(length):
                node = rnd.choice(nbrs[rnd.choice(nbrs[node])])
                hops += 1
    return hops / (time.perf_counter() - t0)


def dgl_walk(g, seeds, length, threads=None):
    """dgl.sampling.random_walk over the same graph (one relation pair): (hops/s, seconds, CPU seconds)."""
    import dgl
    import torch

    torch.set_num_threads(threads or os.cpu_count() or 1)
    u = torch.from_numpy(np.repeat(np.arange(g["n_users"], dtype=np.int64), np.diff(g["ut_indptr"])))
    t = torch.from_numpy(g["ut_indices"].astype(np.int64))
    hg = dgl.heterograph({("user", "eng", "tweet"): (u, t), ("tweet", "rev", "user"): (t, u)},
                         num_nodes_dict={"user": g["n_users"], "tweet": g["n_tweets"]})
    del u, t
    hg.create_formats_()
    s = torch.from_numpy(seeds.astype(np.int64))
    dgl.sampling.random_walk(hg, s[:1000], metapath=["rev", "eng"] * length)  # warm up
    best = None
    for _ in range(2):
        t0, c0 = time.perf_counter(), time.process_time()
        traces, _ = dgl.sampling.random_walk(hg, s, metapath=["rev", "eng"] * length)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        best = (dt, dc) if best is None or dt < best[0] else best
        del traces
    del hg
    gc.collect()
    return len(seeds) * length / best[0], best[0], best[1]


def bench_walk(args):
    from mining.walk import run_walks

    if args.quick:
        U, T, E, nq, walks = 20_000, 40_000, 400_000, 5_000, 10
    else:
        U, T, E, nq, walks = 1_000_000, 2_000_000, 20_000_000, 200_000, 25
    length = 4
    print(f"== walk: building power-law graph {U} users, {T} tweets, {E} edges")
    g = power_law_graph(U, T, E, seed=1, times=False)
    info = describe(g)
    print(json.dumps(info))
    rng = np.random.default_rng(2)
    has = np.flatnonzero(np.diff(g["tu_indptr"]) > 0)
    queries = np.sort(rng.choice(has, min(nq, len(has)), replace=False))
    uniform = np.ones(3, np.float32)
    weights = np.array([1.0, 2.0, 0.5], np.float32)
    huge = 1 << 40
    common = dict(queries=queries, walks_per_query=walks, walk_length=length, restart_prob=0.0, top_k=20,
                  min_visits=2, seed=0, progress=False)
    # compile (small call)
    run_walks(*walk_args(g), uniform, **{**common, "queries": queries[:50]}, max_user_degree=huge)
    run_walks(*walk_args(g), weights, **{**common, "queries": queries[:50]}, max_user_degree=100)
    rows, res = [], {}

    def ours(label, w, cap, W, mode="skip"):
        """Best of 2 runs of run_walks (validation and set-up included): (steps/s, steps per CPU-second)."""
        best = None
        for _ in range(2):
            c0 = time.process_time()
            out, dt, mem = measure(run_walks, *walk_args(g), w, **common, max_user_degree=cap,
                                   walkers_in_flight=W, degree_cap_mode=mode)
            dc = time.process_time() - c0
            best = (dt, out[3], dc) if best is None or dt < best[0] else best
        sps, cpu_sps = 2 * best[1] / best[0], 2 * best[1] / best[2]
        rows.append([label, f"{best[1] * 2:,}", f"{best[0]:.2f}s", fmt_rate(sps), fmt_rate(cpu_sps)])
        return sps, cpu_sps

    default_W = inspect.signature(run_walks).parameters["walkers_in_flight"].default
    naive_sps, naive_cpu = ours("ours reference loop (W=1), no cap, uniform", uniform, huge, 1)
    inflight, inflight_cpu = {}, {}
    for W in (8, 16, 32, 64, 128):
        inflight[W], inflight_cpu[W] = ours(f"ours walker pool W={W}, no cap, uniform", uniform, huge, W)
    best_W = max(inflight, key=inflight.get)
    walk_sps, walk_cpu = inflight[default_W], inflight_cpu[default_W]
    capped_sps, capped_cpu = ours(f"ours W={default_W}, cap 100 skip, type weights", weights, 100, default_W)
    sample_sps, sample_cpu = ours(f"ours W={default_W}, cap 100 sample, type weights", weights, 100, default_W,
                                  "sample")

    # one thread each: a per-core comparison that shared/contended machines distort less
    import numba

    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        one_sps, one_cpu = ours(f"ours W={default_W}, no cap, uniform, 1 thread", uniform, huge, default_W)
        one8_sps, _ = ours("ours W=8, no cap, uniform, 1 thread", uniform, huge, 8)
        gth1, _, gth1_rates = gather_ceiling(g["ut_indices"], g["tu_indptr"], n=1 << (22 if args.quick else 25))
        rows.append(["ceiling, 1 thread: best random int32 gathers / 2", "", "", fmt_rate(gth1 / 2),
                     fmt_rate(max(r[1] for r in gth1_rates.values()) / 2)])
    finally:
        numba.set_num_threads(threads)
    seeds = np.repeat(queries, walks)
    dgl1_sps = None
    try:
        dgl1_hops, dgl1_s, dgl1_cpu = dgl_walk(g, seeds, length, threads=1)
        dgl1_sps = 2 * dgl1_hops
        rows.append(["dgl.sampling.random_walk, 1 thread", f"{len(seeds) * length * 2:,}", f"{dgl1_s:.2f}s",
                     fmt_rate(dgl1_sps), fmt_rate(len(seeds) * length * 2 / dgl1_cpu)])
    except Exception as e:
        print(f"dgl baseline failed: {e!r}")
    res["dgl_steps_per_s_1thread"] = dgl1_sps
    res["walk_steps_per_s_1thread"] = one_sps
    res["walk_steps_per_cpu_s_1thread"] = one_cpu
    res["walk_w8_steps_per_s_1thread"] = one8_sps
    res["gather_ceiling_steps_per_s_1thread"] = gth1 / 2
    res["walk_fraction_of_ceiling_1thread"] = one_sps / (gth1 / 2)
    res["walk_speedup_vs_dgl_1thread"] = one_sps / dgl1_sps if dgl1_sps else None
    dgl_cpu_sps = None
    try:
        dgl_hops, dgl_s, dgl_cpu = dgl_walk(g, seeds, length)
        dgl_sps = 2 * dgl_hops
        dgl_cpu_sps = len(seeds) * length * 2 / dgl_cpu
        rows.append(["dgl.sampling.random_walk (metapath rev,eng x4)", f"{len(seeds) * length * 2:,}",
                     f"{dgl_s:.2f}s", fmt_rate(dgl_sps), fmt_rate(dgl_cpu_sps)])
    except Exception as e:  # dgl missing or broken: say so
        print(f"dgl baseline failed: {e!r}")
        dgl_sps = None

    gth, chain, gth_rates = gather_ceiling(g["ut_indices"], g["tu_indptr"], n=1 << (22 if args.quick else 26))
    ceiling_sps = gth / 2
    for name, (r, rc) in gth_rates.items():
        rows.append([f"random int32 gathers / 2, {name}", "", "", fmt_rate(r / 2), fmt_rate(rc / 2)])
    rows.append(["ceiling: best random int32 gathers / 2", "", "", fmt_rate(ceiling_sps), ""])
    rows.append(["(indptr -> indices dependent chains)", "", "", fmt_rate(chain), ""])

    small = power_law_graph(2_000, 4_000, 50_000, seed=3, times=False)
    sq = np.flatnonzero(np.diff(small["tu_indptr"]) > 0)[:300]
    py_hops = python_walker(small, sq, walks, length)
    rows.append(["plain Python + networkx adjacency (50k-edge graph)", "", "", fmt_rate(2 * py_hops), ""])
    out_small, dt_small, _ = measure(run_walks, *walk_args(small), uniform, queries=sq, walks_per_query=walks,
                                     walk_length=length, restart_prob=0.0, max_user_degree=huge, progress=False)
    rows.append([f"ours W={default_W} on the same 50k-edge graph", "", f"{dt_small:.3f}s",
                 fmt_rate(2 * out_small[3] / dt_small), ""])

    print(f"== walk ({walks} walks x {length} hops from {len(queries)} queries, no restart; a step is one edge, "
          f"tweet->user or user->tweet; DGL's metapath [rev, eng] x {length} is {2 * length} steps per walk)")
    table(rows, ["walker", "steps", "time", "steps/s", "steps/CPU-s"])
    best_gather_cpu = max(r[1] for r in gth_rates.values())
    res.update({
        "walk_graph": info, "walk_queries": int(len(queries)), "walk_walks_per_query": walks, "walk_length": length,
        "walk_default_inflight": default_W,
        "walk_steps_per_s": walk_sps, "walk_steps_per_cpu_s": walk_cpu, "walk_naive_steps_per_s": naive_sps,
        "walk_inflight_steps_per_s": {str(k): v for k, v in inflight.items()}, "walk_best_inflight": best_W,
        "walk_inflight_steps_per_cpu_s": {str(k): v for k, v in inflight_cpu.items()},
        "walk_capped_weighted_steps_per_s": capped_sps, "walk_sample_mode_steps_per_s": sample_sps,
        "walk_capped_weighted_steps_per_cpu_s": capped_cpu, "walk_sample_mode_steps_per_cpu_s": sample_cpu,
        "dgl_steps_per_s": dgl_sps, "dgl_steps_per_cpu_s": dgl_cpu_sps, "gather_per_s": gth,
        "gather_variants_per_s": {k: v[0] for k, v in gth_rates.items()},
        "gather_variants_per_cpu_s": {k: v[1] for k, v in gth_rates.items()}, "gather_chain_per_s": chain,
        "gather_ceiling_steps_per_s": ceiling_sps, "walk_fraction_of_ceiling": walk_sps / ceiling_sps,
        "walk_fraction_of_ceiling_cpu": walk_cpu / (best_gather_cpu / 2),
        "walk_speedup_vs_dgl": (walk_sps / dgl_sps) if dgl_sps else None,
        "walk_speedup_vs_dgl_cpu": (walk_cpu / dgl_cpu_sps) if dgl_cpu_sps else None,
        "walk_interleave_speedup": walk_sps / naive_sps, "python_steps_per_s": 2 * py_hops,
        "load_average": list(os.getloadavg()),
    })
    nan = float("nan")
    print(f"ours/DGL = {res['walk_speedup_vs_dgl'] or nan:.2f}x (per CPU-second "
          f"{res['walk_speedup_vs_dgl_cpu'] or nan:.2f}x;"
          f" 1 thread {res['walk_speedup_vs_dgl_1thread'] or nan:.2f}x; target >= 3), "
          f"ours/ceiling = {res['walk_fraction_of_ceiling']:.2f} (per CPU-second "
          f"{res['walk_fraction_of_ceiling_cpu']:.2f}; 1 thread {res['walk_fraction_of_ceiling_1thread']:.2f}; "
          f"target >= 0.5), pool/reference loop = {res['walk_interleave_speedup']:.2f}x; "
          f"load average {os.getloadavg()[0]:.1f}\n")
    return res


# ------------------------------------------------------------------------------------------
# co-engagement
# ------------------------------------------------------------------------------------------


def scipy_coengage(g, cap, min_count):
    import scipy.sparse as sp

    deg = np.diff(g["ut_indptr"])
    rows = np.repeat(np.arange(g["n_users"], dtype=np.int32), deg)
    keep = deg[rows] <= cap
    A = sp.csr_matrix((np.ones(int(keep.sum()), np.int32), (rows[keep], g["ut_indices"][keep])),
                      shape=(g["n_users"], g["n_tweets"]))
    del rows, keep
    G = (A.T.tocsr() @ A).tocoo()
    m = (G.row != G.col) & (G.data >= min_count)
    return G.row[m], G.col[m], G.data[m]


def bench_coengage(args):
    from mining.coengagement import coengagement_pairs

    U, T, E = (20_000, 40_000, 400_000) if args.quick else (500_000, 1_000_000, 5_000_000)
    print(f"== coengage: power-law graph {U} users, {T} tweets, {E} edges, cap 100")
    g = power_law_graph(U, T, E, seed=4)
    info = describe(g)
    print(json.dumps(info))
    coengagement_pairs(*co_args(power_law_graph(100, 200, 2000, seed=5)), progress=False)  # compile
    (a, b, s), ours_s, ours_mem = measure(coengagement_pairs, *co_args(g), max_user_degree=100, min_count=2,
                                          progress=False)
    (r, c, v), sc_s, sc_mem = measure(scipy_coengage, g, 100, 2)
    o1 = np.lexsort((b, a))
    o2 = np.lexsort((c, r))
    same = (len(a) == len(r) and np.array_equal(a[o1], r[o2]) and np.array_equal(b[o1], c[o2])
            and np.array_equal(s[o1], v[o2].astype(np.float64)))
    assert same, "co-engagement counts differ from scipy's AᵀA"
    (_, _, _), win_s, _ = measure(coengagement_pairs, *co_args(g), max_user_degree=100, min_count=2,
                                  window_s=7200, progress=False)
    (_, _, _), sw_s, _ = measure(coengagement_pairs, *co_args(g), max_user_degree=100, min_count=2,
                                 normalize="swing", top_k=50, progress=False)
    rows = [["ours (count, min_count 2)", f"{ours_s:.2f}s", f"{ours_mem / 2**20:.0f} MiB", f"{len(a):,}"],
            ["scipy A.T @ A (+ filter)", f"{sc_s:.2f}s", f"{sc_mem / 2**20:.0f} MiB", f"{len(r):,}"],
            ["ours, window 2 h", f"{win_s:.2f}s", "", ""],
            ["ours, swing, top 50", f"{sw_s:.2f}s", "", ""]]
    table(rows, ["method", "time", "peak extra RSS", "directed pairs"])
    print(f"identical counts: {same}; ours/scipy speed = {sc_s / ours_s:.2f}x (target >= 2), "
          f"memory ratio = {ours_mem / max(sc_mem, 1):.2f}\n")
    return {"coengage_graph": info, "coengage_s": ours_s, "scipy_s": sc_s, "coengage_peak_bytes": ours_mem,
            "scipy_peak_bytes": sc_mem, "coengage_pairs": int(len(a)), "coengage_identical_to_scipy": bool(same),
            "coengage_speedup_vs_scipy": sc_s / ours_s, "coengage_window_7200_s": win_s,
            "coengage_swing_top50_s": sw_s}


# ------------------------------------------------------------------------------------------
# growth
# ------------------------------------------------------------------------------------------


def bench_growth(args):
    from mining.coengagement import coengagement_pairs
    from mining.walk import run_walks

    sizes = [100_000, 1_000_000] if args.quick else [int(float(x)) for x in args.growth_sizes.split(",")]
    rows, out = [], []
    for E in sizes:
        U, T = E // 20, E // 10
        g = power_law_graph(U, T, E, seed=6, times=False)
        rng = np.random.default_rng(0)
        has = np.flatnonzero(np.diff(g["tu_indptr"]) > 0)
        q = np.sort(rng.choice(has, min(100_000, len(has)), replace=False))
        w = np.array([1.0, 2.0, 0.5], np.float32)
        res, wt, wm = measure(run_walks, *walk_args(g), w, queries=q, progress=False)
        per_q = wt / len(q)
        (a, _, _), ct, cm = measure(coengagement_pairs, *co_args(g), progress=False)
        row = {"edges": g["n_edges"], "users": U, "tweets": T, "csr_bytes": describe(g)["bytes_csr"],
               "walk_queries": int(len(q)), "walk_s": wt, "walk_peak_bytes": wm,
               "walk_all_tweets_s_estimate": per_q * len(has), "walk_steps_per_s": 2 * res[3] / wt,
               "coengage_s": ct, "coengage_peak_bytes": cm, "coengage_pairs": int(len(a))}
        out.append(row)
        rows.append([f"{g['n_edges']:,}", f"{wt:.2f}s ({len(q)} q)", f"{row['walk_all_tweets_s_estimate']:.1f}s",
                     f"{wm / 2**20:.0f} MiB", f"{ct:.2f}s", f"{cm / 2**20:.0f} MiB", f"{len(a):,}"])
        del g
        gc.collect()
    print("== growth (defaults: walk 200 walks x 4, restart 0.5, cap 100 skip; coengage count, cap 100)")
    table(rows, ["edges", "walk", "walk all tweets (est.)", "walk peak", "coengage", "coengage peak", "pairs"])
    return {"growth": out}


# ------------------------------------------------------------------------------------------
# quality on planted topics
# ------------------------------------------------------------------------------------------


def planted_graph(n_topics=20, n_users=20_000, n_tweets=40_000, n_edges=400_000, noise=0.02, bots=0.005, seed=7):
    """Users and tweets with one topic each; a user engages inside their topic, with some noise
    engagements and a few hyperactive bots engaging anywhere (what the degree cap is for)."""
    rng = np.random.default_rng(seed)
    t_topic = rng.integers(0, n_topics, n_tweets)
    u_topic = rng.integers(0, n_topics, n_users)
    by_topic = [np.flatnonzero(t_topic == k) for k in range(n_topics)]
    n_bots = int(bots * n_users)
    bot_edges = n_bots * 300
    act = rng.pareto(1.5, n_users - n_bots) + 1
    u = rng.choice(np.arange(n_bots, n_users), n_edges - bot_edges, p=act / act.sum())
    t = np.empty(len(u), np.int64)
    noisy = rng.random(len(u)) < noise
    for k in range(n_topics):
        m = (u_topic[u] == k) & ~noisy
        pool = by_topic[k]
        pop = 1.0 / np.arange(1, len(pool) + 1) ** 0.8
        t[m] = pool[rng.choice(len(pool), int(m.sum()), p=pop / pop.sum())]
    t[noisy] = rng.integers(0, n_tweets, int(noisy.sum()))
    u = np.concatenate([u, np.repeat(np.arange(n_bots), 300)])
    t = np.concatenate([t, rng.integers(0, n_tweets, bot_edges)])
    key = np.unique(u * n_tweets + t)
    u, t = (key // n_tweets).astype(np.int32), (key % n_tweets).astype(np.int32)
    e = rng.choice(3, len(u), p=[0.7, 0.2, 0.1]).astype(np.int8)
    tm = rng.integers(0, 86400, len(u))
    ut_indptr = np.zeros(n_users + 1, np.int64)
    np.cumsum(np.bincount(u, minlength=n_users), out=ut_indptr[1:])
    order = np.argsort(t, kind="stable")
    tu_indptr = np.zeros(n_tweets + 1, np.int64)
    np.cumsum(np.bincount(t, minlength=n_tweets), out=tu_indptr[1:])
    g = dict(ut_indptr=ut_indptr, ut_indices=t, ut_etype=e, ut_time=tm, tu_indptr=tu_indptr,
             tu_indices=u[order], tu_etype=e[order], tu_time=tm[order], n_users=n_users, n_tweets=n_tweets,
             n_edges=len(u))
    return g, t_topic


def pair_quality(a, b, topic, tu_indptr):
    """Topic purity of the unordered pairs, and coverage of tweets with >= 2 engagers."""
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    key = np.unique(lo.astype(np.int64) * len(topic) + hi)
    pa, pb = key // len(topic), key % len(topic)
    purity = float((topic[pa] == topic[pb]).mean()) if len(key) else float("nan")
    eligible = np.diff(tu_indptr) >= 2
    covered = np.zeros(len(topic), bool)
    covered[a] = True
    covered[b] = True
    return purity, float(covered[eligible].mean()), int(len(key))


def bench_quality(args):
    from mining.coengagement import coengagement_pairs
    from mining.walk import walk_pairs

    g, topic = planted_graph(n_edges=100_000 if args.quick else 400_000)
    w = np.array([1.0, 2.0, 0.5], np.float32)
    rows, res = [], {}
    for name, fn in [("walk", lambda: walk_pairs(*walk_args(g), w, progress=False)),
                     ("coengage", lambda: coengagement_pairs(*co_args(g), progress=False)),
                     ("coengage cosine top 20", lambda: coengagement_pairs(*co_args(g), normalize="cosine", top_k=20,
                                                                           progress=False)),
                     ("walk, no cap", lambda: walk_pairs(*walk_args(g), w, max_user_degree=1 << 40, progress=False)),
                     ("coengage, no cap", lambda: coengagement_pairs(*co_args(g), max_user_degree=1 << 40,
                                                                     progress=False))]:
        (a, b, _), dt, _ = measure(fn)
        purity, coverage, n = pair_quality(a, b, topic, g["tu_indptr"])
        rows.append([name, f"{n:,}", f"{purity:.3f}", f"{coverage:.3f}", f"{dt:.2f}s"])
        res[name] = {"pairs": n, "topic_purity": purity, "coverage": coverage, "seconds": dt}
    print(f"== quality: planted topics, {g['n_users']} users ({int(0.005 * g['n_users'])} bots), "
          f"{g['n_tweets']} tweets, {g['n_edges']} edges, default settings unless stated")
    table(rows, ["method", "unordered pairs", "same topic", "coverage", "time"])
    return {"quality": res, "walk_topic_purity": res["walk"]["topic_purity"],
            "walk_coverage": res["walk"]["coverage"], "coengage_topic_purity": res["coengage"]["topic_purity"],
            "coengage_coverage": res["coengage"]["coverage"]}


def bench_knn(args):
    """Hook for the kNN section (FAISS vs exact, recall@10 and speed-up); owned by mining/knn.py."""
    try:
        from mining.knn import bench_section  # type: ignore[attr-defined]
    except ImportError:
        print("== knn: no mining.knn.bench_section yet; section skipped (figures kept from earlier runs)\n")
        return {}
    return bench_section(args)


SECTIONS = {"walk": bench_walk, "coengage": bench_coengage, "growth": bench_growth, "quality": bench_quality,
            "knn": bench_knn}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small graphs: a smoke run in seconds")
    p.add_argument("--sections", default="walk,coengage,growth,quality,knn",
                   help=f"comma-separated subset of {list(SECTIONS)}")
    p.add_argument("--growth-sizes", default="1e6,1e7,1e8", help="edge counts for the growth section")
    p.add_argument("--out", default=str(RESULTS), help="results JSON (merged with what is there)")
    args = p.parse_args(argv)
    from numba import get_num_threads

    results = {}
    out = Path(args.out)
    if out.exists():
        results = json.loads(out.read_text())
    meta = {"cpus": os.cpu_count(), "numba_threads": get_num_threads(), "quick": args.quick,
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for name in args.sections.split(","):
        name = name.strip()
        if name not in SECTIONS:
            p.error(f"unknown section {name!r}; choose from {list(SECTIONS)}")
        results.update(SECTIONS[name](args))
        results.setdefault("runs", {})[name] = meta
        write_json(out, results)  # after every section: a crash keeps what was measured
    print(f"results in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
