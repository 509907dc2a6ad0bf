"""Counts and degree summaries of a graph artifact, and a log-log degree-distribution plot.

Reads only the manifest and the memory-mapped CSR arrays (no dgl).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from coengage.artifacts import atomic_file
from graph.artifact import GraphArtifact

log = logging.getLogger(__name__)

NODE_DIRECTIONS = {"user": "user_tweet", "tweet": "tweet_user"}


def degree_summary(deg: np.ndarray) -> dict:
    """min/mean/median/p90/p99/max of a degree array, and how many nodes have degree 0."""
    deg = np.asarray(deg)
    if len(deg) == 0:
        return {"nodes": 0, "zero_degree": 0, "min": 0, "mean": 0.0, "median": 0.0, "p90": 0.0, "p99": 0.0, "max": 0}
    q = np.percentile(deg, [50, 90, 99])
    return {
        "nodes": int(len(deg)),
        "zero_degree": int((deg == 0).sum()),
        "min": int(deg.min()),
        "mean": float(deg.mean()),
        "median": float(q[0]),
        "p90": float(q[1]),
        "p99": float(q[2]),
        "max": int(deg.max()),
    }


def node_degrees(graph: GraphArtifact, node_type: str) -> dict[str, np.ndarray]:
    """Degrees of every node of ``node_type``: key 'all' (distinct edges of any type) and per relation."""
    csr = graph.csr(NODE_DIRECTIONS[node_type])
    deg_all = np.diff(np.asarray(csr.indptr))
    out = {"all": deg_all}
    rows = np.repeat(np.arange(csr.n_rows, dtype=np.int64), deg_all)
    etype = np.asarray(csr.etype)
    for r, name in enumerate(graph.relations):
        out[name] = np.bincount(rows[etype == r], minlength=csr.n_rows)
    return out


def compute_stats(graph: GraphArtifact | str | os.PathLike) -> dict:
    """Everything `coengage graph stats` prints, as a JSON-serialisable dict."""
    graph = graph if isinstance(graph, GraphArtifact) else GraphArtifact(graph)
    m = graph.manifest
    stats = {
        "path": str(graph.path),
        "fingerprint": graph.fingerprint,
        "num_nodes": dict(m["num_nodes"]),
        "num_edges": dict(m["num_edges"]),
        "total_edges": graph.num_edges,
        "relations": graph.relations,
        "type_weights": dict(m.get("type_weights", {})),
        "rows_read": m.get("rows_read"),
        "duplicates_merged": m.get("duplicates_merged"),
        "dropped": dict(m.get("dropped", {})),
        "texts": {k: v for k, v in m.get("texts", {}).items() if k in ("tweets_with_text", "tweets_without_text")},
        "time_range": m.get("time_range"),
        "degrees": {},
    }
    for node_type in NODE_DIRECTIONS:
        degs = node_degrees(graph, node_type)
        stats["degrees"][node_type] = {name: degree_summary(d) for name, d in degs.items()}
    return stats


def format_stats(stats: dict) -> str:
    """A plain-text report of :func:`compute_stats`."""
    lines = [f"graph {stats['path']}  (fingerprint {stats['fingerprint']})"]
    nn = stats["num_nodes"]
    lines.append(f"nodes: {nn['user']:,} users, {nn['tweet']:,} tweets")
    lines.append(f"edges: {stats['total_edges']:,} distinct (user, tweet, type) edges")
    for r in stats["relations"]:
        lines.append(f"  {r:<20} {stats['num_edges'][r]:>14,}  weight {stats['type_weights'].get(r, 1.0):g}")
    if stats.get("rows_read") is not None:
        lines.append(f"rows read: {stats['rows_read']:,}; duplicate rows merged: {stats.get('duplicates_merged') or 0:,}")
    dropped = {k: v for k, v in stats["dropped"].items() if v}
    lines.append("dropped rows: " + (", ".join(f"{k} {v:,}" for k, v in dropped.items()) if dropped else "none"))
    if stats.get("texts"):
        t = stats["texts"]
        lines.append(f"texts: {t.get('tweets_with_text', 0):,} tweets with text, {t.get('tweets_without_text', 0):,} without")
    header = f"  {'degree':<22}{'nodes':>12}{'zero':>10}{'min':>7}{'mean':>9}{'median':>8}{'p90':>8}{'p99':>9}{'max':>9}"
    for node_type, per in stats["degrees"].items():
        lines.append(f"{node_type} degrees (distinct edges per node):")
        lines.append(header)
        for name, s in per.items():
            lines.append(f"  {name:<22}{s['nodes']:>12,}{s['zero_degree']:>10,}{s['min']:>7}{s['mean']:>9.2f}"
                         f"{s['median']:>8g}{s['p90']:>8g}{s['p99']:>9g}{s['max']:>9,}")
    return "\n".join(lines)


def plot_degrees(graph: GraphArtifact | str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write a PNG: per node type, the number of nodes with degree k against k, log-log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    graph = graph if isinstance(graph, GraphArtifact) else GraphArtifact(graph)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, node_type in zip(axes, NODE_DIRECTIONS):
        for name, deg in node_degrees(graph, node_type).items():
            counts = np.bincount(deg)
            k = np.flatnonzero(counts)
            k = k[k > 0]  # degree 0 has no place on a log axis
            if len(k) == 0:
                continue
            style = dict(color="black", lw=2, marker=None) if name == "all" else dict(lw=1, marker=".", ms=3)
            ax.plot(k, counts[k], label=name, **style)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("degree k (distinct edges)")
        ax.set_ylabel(f"number of {node_type}s with degree k")
        ax.set_title(f"{node_type} degree distribution")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{graph.path.name}: {graph.num_users:,} users, {graph.num_tweets:,} tweets, {graph.num_edges:,} edges")
    fig.tight_layout()
    out = Path(out)
    with atomic_file(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    log.info("wrote %s", out)
    return out
