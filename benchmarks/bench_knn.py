"""Benchmark of kNN mining: FAISS IVF vs the exact blocked search, same process, same vectors.

Data: ``--n`` tweet vectors (default 1,000,000) of dimension ``--dim`` (default 128, the
`graph embed` default), drawn as a mixture of ``--clusters`` Gaussian clusters (graph
embeddings of tweets cluster by community); L2-normalised, so inner product = cosine.

* exact (:func:`mining.knn.exact_topk`): timed on ``--sample`` queries against all n vectors;
  the full all-pairs time is that time x n / sample (the work is the same per query, so this
  is a linear extrapolation, stated as such in the output);
* FAISS ``IVF<nlist>,Flat`` (:func:`mining.knn.faiss_topk`, the path `coengage mine --index
  faiss-ivf` runs, exact re-scoring included): index build timed; recall@10 against the exact
  neighbours of the sample for several ``nprobe``; the smallest ``nprobe`` reaching
  ``--target-recall`` is then run for *all* n queries and timed.

``knn_speedup`` = extrapolated exact time / (FAISS build + full FAISS search).
Writes ``benchmarks/results/knn.json`` (``knn_quick.json`` with ``--quick``).
Run: ``.venv/bin/python benchmarks/bench_knn.py [--quick]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import format_table, machine_info, write_result  # noqa: E402


def make_vectors(n: int, dim: int, clusters: int, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim)).astype(np.float32)
    x = np.empty((n, dim), dtype=np.float32)
    step = 200_000
    for s in range(0, n, step):
        m = min(step, n - s)
        x[s:s + m] = centers[rng.integers(0, clusters, m)] + noise * rng.normal(size=(m, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def recall_at(ids_true: np.ndarray, ids: np.ndarray, k: int) -> float:
    hits = [len(set(t[:k].tolist()) & set(f[:k].tolist())) for t, f in zip(ids_true, ids)]
    return float(np.sum(hits) / (k * len(ids_true)))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="100k vectors, 500 sample queries (smoke run)")
    p.add_argument("--n", type=int, default=1_000_000, help="tweet vectors (default 1,000,000)")
    p.add_argument("--dim", type=int, default=128, help="dimension (default 128)")
    p.add_argument("--clusters", type=int, default=2000, help="Gaussian clusters in the data (default 2000)")
    p.add_argument("--noise", type=float, default=0.6, help="per-coordinate noise around a cluster centre (default 0.6)")
    p.add_argument("--sample", type=int, default=1000, help="queries the exact search is timed on (default 1000)")
    p.add_argument("--k", type=int, default=10, help="neighbours per query (default 10)")
    p.add_argument("--nprobes", default="1,2,4,8,16,32,64",
                   help="IVF nprobe values tried, smallest first; the first to reach --target-recall on the sample "
                        "runs all queries (default 1,2,4,8,16,32,64)")
    p.add_argument("--target-recall", type=float, default=0.95, help="recall@k the full run must reach (default 0.95)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.sample = 100_000, 500

    import faiss

    from mining.knn import build_faiss_index, default_nlist, exact_topk, faiss_topk

    k = args.k
    t0 = time.perf_counter()
    x = make_vectors(args.n, args.dim, args.clusters, args.noise, args.seed)
    print(f"{args.n:,} vectors x {args.dim} ({args.clusters} clusters) made in {time.perf_counter() - t0:.1f}s; "
          f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads", flush=True)
    rng = np.random.default_rng(args.seed + 1)
    sample = np.sort(rng.choice(args.n, args.sample, replace=False))

    t0 = time.perf_counter()
    ids_exact, _ = exact_topk(x, x[sample], k, query_ids=sample, progress=False)
    exact_sample_s = time.perf_counter() - t0
    exact_full_s = exact_sample_s * args.n / args.sample
    print(f"exact: {args.sample} queries in {exact_sample_s:.2f}s -> all {args.n:,}: {exact_full_s:,.0f}s "
          f"(extrapolated)", flush=True)

    nlist = default_nlist(args.n)
    t0 = time.perf_counter()
    index = build_faiss_index(x, "faiss-ivf", nlist=nlist, seed=args.seed)
    build_s = time.perf_counter() - t0
    print(f"faiss IVF{nlist},Flat built in {build_s:.1f}s", flush=True)

    sweep = []
    for nprobe in [int(v) for v in args.nprobes.split(",")]:
        t0 = time.perf_counter()
        ids, _ = faiss_topk(x, x[sample], k, index="faiss-ivf", query_ids=sample, nprobe=nprobe, built=index,
                            progress=False)
        dt = time.perf_counter() - t0
        sweep.append({"nprobe": nprobe, f"recall@{k}": recall_at(ids_exact, ids, k), "sample_s": dt,
                      "per_query_ms": 1000 * dt / args.sample})
        print(f"  nprobe {nprobe}: recall@{k} {sweep[-1][f'recall@{k}']:.4f}", flush=True)
    chosen = next((r for r in sweep if r[f"recall@{k}"] >= args.target_recall), sweep[-1])

    t0 = time.perf_counter()
    ids_all, _ = faiss_topk(x, x, k, index="faiss-ivf", query_ids=np.arange(args.n), nprobe=chosen["nprobe"],
                            built=index, progress=True)
    full_search_s = time.perf_counter() - t0
    recall_full = recall_at(ids_exact, ids_all[sample], k)  # the full run's answers for the sample queries
    faiss_total_s = build_s + full_search_s
    speedup = exact_full_s / faiss_total_s

    rows = [
        {"method": "exact (blocked BLAS)", "queries_timed": args.sample, "time_all_s": exact_full_s,
         f"recall@{k}": 1.0, "speedup": 1.0, "note": "extrapolated x n/sample"},
        {"method": f"faiss IVF{nlist},Flat nprobe={chosen['nprobe']}", "queries_timed": args.n,
         "time_all_s": faiss_total_s, f"recall@{k}": recall_full, "speedup": speedup,
         "note": f"build {build_s:.1f}s + search {full_search_s:.1f}s"},
    ]
    print()
    print(format_table(rows, ["method", "queries_timed", "time_all_s", f"recall@{k}", "speedup", "note"]))
    print()
    print(format_table(sweep, ["nprobe", f"recall@{k}", "per_query_ms"]))
    ok = recall_full >= args.target_recall and speedup >= 10
    print(f"\ntarget recall@{k} >= {args.target_recall} at >= 10x the exact speed: {'MET' if ok else 'NOT MET'}")
    result = {
        "config": vars(args), "machine": machine_info(), "faiss_version": faiss.__version__,
        f"knn_recall_at_{k}": recall_full, "knn_speedup": speedup,
        "exact_sample_s": exact_sample_s, "exact_full_s_extrapolated": exact_full_s,
        "faiss_build_s": build_s, "faiss_search_all_s": full_search_s, "faiss_total_s": faiss_total_s,
        "nlist": nlist, "nprobe": chosen["nprobe"], "sweep": sweep, "target_met": ok,
    }
    path = write_result("knn_quick" if args.quick else "knn", result)
    print(f"wrote {path}")
    if not args.quick:
        merge_into_mining(result)
    return 0


def merge_into_mining(result: dict) -> None:
    """The issue's mining.json carries the kNN figures too; copy them there (keys prefixed knn_)."""
    import json

    from _common import RESULTS

    path = RESULTS / "mining.json"
    mining = json.loads(path.read_text()) if path.exists() else {}
    mining.update({k: v for k, v in result.items() if k.startswith("knn_")})
    mining["knn_source"] = "benchmarks/bench_knn.py (benchmarks/results/knn.json)"
    write_result("mining", mining)


if __name__ == "__main__":
    sys.exit(main())
