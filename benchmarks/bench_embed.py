"""Benchmark `coengage graph embed` against PyTorch Geometric's TransE training loop.

One run, one synthetic planted-topic graph (written with graph.writer.write_graph), the same
train/held-out split, the same negatives budget (--negatives per positive, half corrupting the
head/user and half the tail/tweet) and the same number of epochs. Each trainer runs in its own
child process so its peak RSS is its own. Reported: positive edges/s (training only), peak RSS,
held-out MRR / HITS@10 (each held-out edge ranked against --eval-candidates random tweets with
the model's own score function, same candidates for both). Ours runs with its default
--matmul-precision auto; where that means bfloat16 products (a CPU with AVX512_BF16 or AMX),
it runs a second time with float32 products, in its own child, for the float32_* figures, and
a third time with --optimizer rowwise (PyTorch-BigGraph's row-wise Adagrad) for the rowwise_* ones.

PyG baseline: torch_geometric.nn.kge.TransE(sparse=True) on one node space (users then tweets),
its own random_sample() corruption applied to each positive repeated --negatives times,
margin ranking loss as in TransE.loss(), torch.optim.SparseAdam(lr=0.01) (PyG's KGE example
uses Adam 0.01; the sparse variant avoids a dense update of the whole table every step).
``--pyg-max-seconds`` caps the baseline's training; if it stops early the JSON says which share
of the epochs it completed, and its MRR is after that share.

    .venv/bin/python benchmarks/bench_embed.py              # 10M engagements = 9.44M edges after dedup
    .venv/bin/python benchmarks/bench_embed.py --edges 10700000 --pyg-max-seconds 60   # >= 10M edges
    .venv/bin/python benchmarks/bench_embed.py --quick      # 200k edges smoke run
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from graph.embed.config import MATMUL_PRECISIONS, OPTIMIZERS  # noqa: E402  (dataclasses only: no torch, no dgl)

RESULTS = ROOT / "benchmarks" / "results" / "embed.json"


def planted_graph(path: Path, num_users: int, num_tweets: int, num_edges: int, topics: int = 16, seed: int = 0):
    """Users/tweets with one of `topics` topics; 80% of a user's edges go to its topic; skewed activity and popularity."""
    import pandas as pd

    from graph.writer import write_graph

    rng = np.random.default_rng(seed)
    user_topic = rng.integers(0, topics, num_users)
    tweet_topic = np.arange(num_tweets) % topics
    # skewed activity: user drawn with weight ~ 1/rank^0.8; tweet popularity likewise within a topic
    uw = 1.0 / np.arange(1, num_users + 1) ** 0.8
    users = rng.choice(num_users, num_edges, p=uw / uw.sum())
    per_topic = num_tweets // topics
    tw = 1.0 / np.arange(1, per_topic + 1) ** 0.8
    slot = rng.choice(per_topic, num_edges, p=tw / tw.sum())
    topic = np.where(rng.random(num_edges) < 0.8, user_topic[users], rng.integers(0, topics, num_edges))
    tweets = slot * topics + topic
    etypes = rng.choice(3, num_edges, p=[0.6, 0.3, 0.1])
    texts = pd.DataFrame({"tweet_id": np.arange(num_tweets).astype(str), "text": "x", "topic": tweet_topic})
    return write_graph(path, user_ids=np.arange(num_users).astype(str), tweet_ids=np.arange(num_tweets).astype(str),
                       users=users, tweets=tweets, etypes=etypes, times=np.zeros(num_edges, np.int64),
                       relations=["fav", "retweet", "reply"], type_weights={"fav": 1.0, "retweet": 2.0, "reply": 1.5}, texts=texts)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_ours(graph_dir: str, args, queue) -> None:
    from graph.embed import EmbedConfig, train_embeddings

    cfg = EmbedConfig(dim=args.dim, epochs=args.epochs, negatives=args.negatives, seed=0, max_eval_edges=args.eval_edges,
                      eval_candidates=args.eval_candidates, batch_size=args.batch_size, chunk_size=args.chunk_size,
                      matmul_precision=args.matmul_precision, optimizer=args.optimizer)
    res = train_embeddings(graph_dir, "/tmp/bench_embed_unused", cfg, write=False, progress=None)
    t = res["timing"]
    queue.put({"edges_per_s": t["edges_per_s"], "train_seconds": t["train_seconds"], "epochs_done": len(res["history"]),
               "mrr": res["metrics"]["mrr"], "hits@10": res["metrics"]["hits@10"], "peak_rss_mb": peak_rss_mb(),
               "train_edges": res["num_edges"]["train"], "evaluated_edges": res["num_edges"]["evaluated"],
               "history": res["history"], "config": res["config"], "matmul_precision": t["matmul_precision"],
               "optimizer": res["config"]["optimizer"]})


class PygScorer:
    """PyG TransE's own score -||normalize(h) + r - normalize(t)||_p, for graph.embed.evaluation."""

    def __init__(self, model, num_users: int):
        import torch
        import torch.nn.functional as F

        with torch.no_grad():
            w = F.normalize(model.node_emb.weight, p=model.p_norm, dim=-1)
            self.user, self.tweet = w[:num_users], w[num_users:]
            self.rel = model.rel_emb.weight.detach().clone()
        self.p = model.p_norm

    def pos(self, users, rels, tweets):
        import torch

        q = self.user[torch.from_numpy(users)] + self.rel[torch.from_numpy(rels)]
        return (-(q - self.tweet[torch.from_numpy(tweets)]).norm(p=self.p, dim=-1)).numpy()

    def matrix(self, users, rels, tweets):
        import torch

        q = self.user[torch.from_numpy(users)] + self.rel[torch.from_numpy(rels)]
        return (-torch.cdist(q, self.tweet[torch.from_numpy(tweets)], p=self.p)).numpy()


def run_pyg(graph_dir: str, args, queue) -> None:
    from graph.embed import choose_omp_wait

    choose_omp_wait()  # the same OpenMP wait policy as ours (chosen before torch loads)
    import torch
    import torch.nn.functional as F
    from torch_geometric.nn.kge import TransE

    import graph
    from graph.embed.config import EmbedConfig
    from graph.embed.data import graph_edges, split_edges
    from graph.embed.evaluation import link_prediction_metrics, link_prediction_ranks
    from graph.embed.train import _eval_edges, available_cores

    torch.set_num_threads(available_cores())
    torch.manual_seed(0)
    g = graph.load(graph_dir)
    cfg = EmbedConfig(holdout=0.01, seed=0, max_eval_edges=args.eval_edges, eval_candidates=args.eval_candidates)
    edges = graph_edges(g)  # the same edges and split as ours
    tr, he = split_edges(len(edges), cfg.holdout, cfg.seed)
    train, held = edges.take(tr), _eval_edges(edges.take(he), cfg)
    U = g.num_users
    head = torch.from_numpy(train.users)
    tail = torch.from_numpy(train.tweets + U)  # one node space: users, then tweets
    rel = torch.from_numpy(train.rels)
    sparse = args.pyg_optimizer == "sparse_adam"
    model = TransE(U + g.num_tweets, len(g.relations), args.dim, margin=1.0, p_norm=1.0, sparse=sparse)
    opt = (torch.optim.SparseAdam if sparse else torch.optim.Adam)(list(model.parameters()), lr=0.01)
    N = args.negatives
    seen, t_train, stopped = 0, 0.0, False
    for epoch in range(args.epochs):
        loader = model.loader(head, rel, tail, batch_size=args.pyg_batch_size, shuffle=True)
        t0 = time.perf_counter()
        for h, r, t in loader:
            opt.zero_grad()
            pos = model(h, r, t)  # [B]
            # the same budget: N negatives per positive; tiling the batch N times makes
            # random_sample() corrupt the head in the first N/2 copies and the tail in the rest
            nh, nr, nt = model.random_sample(h.repeat(N), r.repeat(N), t.repeat(N))
            neg = model(nh, nr, nt)  # [N * B]
            loss = F.margin_ranking_loss(pos.repeat(N), neg, target=torch.ones_like(neg), margin=model.margin)
            loss.backward()
            opt.step()
            seen += len(h)
            if args.pyg_max_seconds and t_train + time.perf_counter() - t0 > args.pyg_max_seconds:
                stopped = True
                break
        t_train += time.perf_counter() - t0
        if stopped:
            break
    ranks = link_prediction_ranks(PygScorer(model, U), held.users, held.rels, held.tweets, g.num_tweets,
                                  num_candidates=cfg.eval_candidates, seed=cfg.seed)
    m = link_prediction_metrics(ranks, held.rels, g.relations)
    queue.put({"edges_per_s": seen / t_train, "train_seconds": t_train, "epochs_done": seen / len(train),
               "stopped_early": stopped, "mrr": m["mrr"], "hits@10": m["hits@10"], "peak_rss_mb": peak_rss_mb(),
               "batch_size": args.pyg_batch_size, "optimizer": f"{args.pyg_optimizer}(lr=0.01)", "margin": 1.0, "p_norm": 1.0})


def in_child(target, graph_dir: str, args) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(graph_dir, args, q))
    p.start()
    while True:  # a child that dies without reporting must not hang the benchmark
        try:
            out = q.get(timeout=5)
            break
        except Exception:
            if not p.is_alive():
                raise RuntimeError(f"{target.__name__} exited with code {p.exitcode} without a result")
    p.join()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="200k edges, a smoke run")
    ap.add_argument("--edges", type=int, default=10_000_000, help="edges of the synthetic graph [10M]")
    ap.add_argument("--users", type=int, default=500_000)
    ap.add_argument("--tweets", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--negatives", type=int, default=100, help="negatives per positive, both trainers [100]")
    ap.add_argument("--epochs", type=int, default=1, help="epochs, both trainers [1]")
    ap.add_argument("--batch-size", type=int, default=8192, help="ours: positives per step")
    ap.add_argument("--chunk-size", type=int, default=512, help="ours: positives sharing negatives")
    ap.add_argument("--pyg-batch-size", type=int, default=1024, help="PyG: positives per step (x negatives triples)")
    ap.add_argument("--pyg-optimizer", choices=["adam", "sparse_adam"], default="sparse_adam",
                    help="PyG: dense Adam (PyG's KGE example) or sparse embeddings + SparseAdam [sparse_adam]")
    ap.add_argument("--pyg-max-seconds", type=float, default=0, help="cap on PyG's training time (0 = none)")
    ap.add_argument("--eval-edges", type=int, default=10000, help="held-out edges ranked [10000]")
    ap.add_argument("--eval-candidates", type=int, default=1000)
    ap.add_argument("--graph-dir", default="/tmp/bench_embed_graph", help="where the synthetic graph is written (reused if it matches)")
    ap.add_argument("--skip-pyg", action="store_true")
    ap.add_argument("--matmul-precision", choices=MATMUL_PRECISIONS, default="auto",
                    help="ours: the products' number format [auto]; where it resolves to bfloat16, ours also runs with "
                         "float32 products in the same invocation (reported as float32_*) unless --skip-float32")
    ap.add_argument("--skip-float32", action="store_true")
    ap.add_argument("--optimizer", choices=OPTIMIZERS, default="fused",
                    help="ours: the node tables' Adagrad [fused, the default of graph embed]; unless it is rowwise, ours "
                         "also runs with --optimizer rowwise (PyTorch-BigGraph's row-wise Adagrad), reported as rowwise_*, "
                         "unless --skip-rowwise")
    ap.add_argument("--skip-rowwise", action="store_true")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    if args.quick:
        args.edges, args.users, args.tweets = 200_000, 10_000, 20_000
        args.graph_dir += "_quick"

    from coengage.artifacts import write_json

    gdir = Path(args.graph_dir)
    spec = {"edges": args.edges, "users": args.users, "tweets": args.tweets}
    try:
        import graph

        g = graph.load(gdir)
        if g.manifest.get("bench_spec") != spec:
            raise ValueError
    except Exception:
        t0 = time.perf_counter()
        g = planted_graph(gdir, args.users, args.tweets, args.edges)
        from coengage.artifacts import read_manifest

        m = read_manifest(gdir)
        m["bench_spec"] = spec
        write_json(gdir / "manifest.json", m)
        print(f"wrote the synthetic graph in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
        g = graph.load(gdir)
    print(f"graph: {g.num_users} users, {g.num_tweets} tweets, {g.num_edges} edges", file=sys.stderr)

    load_start = os.getloadavg()
    ours = in_child(run_ours, str(gdir), args)
    print("ours:", json.dumps({k: v for k, v in ours.items() if k not in ("history", "config")}), file=sys.stderr)
    # ours again, in other configurations: (key prefix, table column, log label, overrides, run it?)
    variants = [("float32", "ours, float32", "ours, float32 products", {"matmul_precision": "float32"},
                 ours["matmul_precision"] != "float32" and not args.skip_float32),
                ("rowwise", "ours, rowwise", "ours, row-wise Adagrad", {"optimizer": "rowwise"},
                 args.optimizer != "rowwise" and not args.skip_rowwise)]
    others = []  # (prefix, column, result)
    for prefix, column, label, overrides, wanted in variants:
        if wanted:
            res = in_child(run_ours, str(gdir), argparse.Namespace(**{**vars(args), **overrides}))
            print(f"{label}:", json.dumps({k: v for k, v in res.items() if k not in ("history", "config")}), file=sys.stderr)
            others.append((prefix, column, res))
    pyg = None if args.skip_pyg else in_child(run_pyg, str(gdir), args)
    result = {
        "graph": {"users": g.num_users, "tweets": g.num_tweets, "edges": g.num_edges},
        "dim": args.dim, "negatives_per_positive": args.negatives, "epochs": args.epochs, "cores": len(os.sched_getaffinity(0)),
        "edges_per_s": ours["edges_per_s"], "mrr": ours["mrr"], "hits@10": ours["hits@10"], "peak_rss_mb": ours["peak_rss_mb"],
        "matmul_precision": ours["matmul_precision"], "optimizer": ours["optimizer"], "ours": ours,
        # 1/5/15-minute load averages of the machine (other jobs share its 2 cores)
        "load_average": {"start": list(load_start), "end": list(os.getloadavg())},
    }
    for prefix, _, res in others:
        result.update({f"{prefix}_{k}": res[k] for k in ("edges_per_s", "mrr", "hits@10", "peak_rss_mb")})
        result[f"ours_{prefix}"] = res
    if pyg:
        result.update({"pyg_edges_per_s": pyg["edges_per_s"], "pyg_mrr": pyg["mrr"], "pyg_hits@10": pyg["hits@10"],
                       "pyg_peak_rss_mb": pyg["peak_rss_mb"], "speedup": ours["edges_per_s"] / pyg["edges_per_s"], "pyg": pyg})
    out = Path(args.out)
    if args.quick and out == RESULTS:
        out = out.with_name("embed_quick.json")
    write_json(out, result)
    rows = [("positive edges/s", "edges_per_s", "{:,.0f}"), ("peak RSS (MB)", "peak_rss_mb", "{:,.0f}"),
            ("held-out MRR", "mrr", "{:.4f}"), ("held-out HITS@10", "hits@10", "{:.4f}"), ("epochs done", "epochs_done", "{:.3g}")]
    print(f"\n{g.num_edges:,} edges, dim {args.dim}, {args.negatives} negatives/positive, {args.epochs} epoch(s)")
    print(f"load average (1 min) {load_start[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end")
    heads = "".join(f" {column:>14s}" for _, column, _ in others)
    print(f"{'':20s} {'coengage (' + ours['matmul_precision'] + ')':>20s}{heads} {'PyG TransE':>14s} {'ratio':>8s}")
    for label, key, fmt in rows:
        a = ours[key]
        b = pyg[key] if pyg else None
        ratio = f"{a / b:.2f}x" if b else "-"
        cols = "".join(f" {fmt.format(res[key]):>14s}" for _, _, res in others)
        print(f"{label:20s} {fmt.format(a):>20s}{cols} {fmt.format(b) if b is not None else '-':>14s} {ratio:>8s}")
    print(f"results -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
