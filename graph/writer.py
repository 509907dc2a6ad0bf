"""Write a graph artifact from integer edge arrays (the last step of `graph build`).

:func:`canonical_edges` de-duplicates (user, tweet, type) triples and sorts them;
:func:`write_graph` lays out GRAPH_DIR (see :mod:`graph.artifact`) atomically. Tests and
benchmarks use :func:`write_graph` directly to make graphs of known shape.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from coengage.artifacts import atomic_dir, now_iso, write_json
from coengage.errors import InputError
from graph.artifact import KIND, SCHEMA_VERSION, CSR, GraphArtifact, save_csr

log = logging.getLogger(__name__)


def canonical_edges(users, tweets, etypes, times, counts=None, num_users=None, num_tweets=None, num_types=None):
    """Merge duplicate (user, tweet, etype) rows: latest time, summed count; sort by (user, tweet, etype).

    Returns ``(users int32, tweets int32, etypes int8, times int64, counts int32, merged)``
    where ``merged`` is how many input rows were folded into an earlier one.
    """
    users = np.asarray(users, dtype=np.int64)
    tweets = np.asarray(tweets, dtype=np.int64)
    etypes = np.asarray(etypes, dtype=np.int64)
    times = np.asarray(times, dtype=np.int64)
    counts = np.ones(len(users), dtype=np.int64) if counts is None else np.asarray(counts, dtype=np.int64)
    n = len(users)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return (empty.astype(np.int32), empty.astype(np.int32), empty.astype(np.int8), empty, empty.astype(np.int32), 0)
    nu = int(num_users if num_users is not None else users.max() + 1)
    nt = int(num_tweets if num_tweets is not None else tweets.max() + 1)
    nr = int(num_types if num_types is not None else etypes.max() + 1)
    if nu * nt * nr < 2**62:
        key = (users * nt + tweets) * nr + etypes
        order = np.argsort(key, kind="stable")
        key = key[order]
        first = np.empty(n, dtype=bool)
        first[0] = True
        np.not_equal(key[1:], key[:-1], out=first[1:])
    else:  # ids too large for one int64 key
        order = np.lexsort((etypes, tweets, users))
        su, st, se = users[order], tweets[order], etypes[order]
        first = np.empty(n, dtype=bool)
        first[0] = True
        first[1:] = (su[1:] != su[:-1]) | (st[1:] != st[:-1]) | (se[1:] != se[:-1])
    starts = np.flatnonzero(first)
    u = users[order][starts].astype(np.int32)
    t = tweets[order][starts].astype(np.int32)
    e = etypes[order][starts].astype(np.int8)
    tm = np.maximum.reduceat(times[order], starts)
    c = np.add.reduceat(counts[order], starts).astype(np.int32)
    return u, t, e, tm, c, int(n - len(starts))


def _csr_from_sorted(rows: np.ndarray, n_rows: int, cols, etype, time, count) -> CSR:
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return CSR(indptr, np.ascontiguousarray(cols, dtype=np.int32), np.ascontiguousarray(etype, dtype=np.int8),
               np.ascontiguousarray(time, dtype=np.int64), np.ascontiguousarray(count, dtype=np.int32))


def build_csrs(users, tweets, etypes, times, counts, num_users: int, num_tweets: int) -> tuple[CSR, CSR]:
    """Both CSR directions from canonical edges (sorted by user, tweet, etype)."""
    ut = _csr_from_sorted(users, num_users, tweets, etypes, times, counts)
    order = np.argsort(tweets, kind="stable")  # stable: keeps (user, etype) order within a tweet
    tu = _csr_from_sorted(tweets[order], num_tweets, users[order], etypes[order], times[order], counts[order])
    return ut, tu


def _hash_arrays(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()[:16]


def _hash_strings(values) -> str:
    h = hashlib.sha256()
    for v in values:
        h.update(str(v).encode("utf-8", "surrogatepass") + b"\x00")
    return h.hexdigest()[:16]


def attach_texts(texts, tweet_ids: np.ndarray):
    """Align a texts DataFrame (columns tweet_id, text, extras) to tweet nodes.

    Returns ``(frame, stats)``: frame has columns node, tweet_id, text, extras, one row per
    graph tweet that has a non-empty text; stats counts what was dropped and why.
    """
    import pandas as pd

    stats = {"rows": 0, "duplicate_ids": 0, "not_in_graph": 0, "empty_text": 0}
    if texts is None:
        frame = pd.DataFrame({"node": np.zeros(0, np.int64), "tweet_id": pd.Series([], dtype=str), "text": pd.Series([], dtype=str)})
        stats["tweets_with_text"] = 0
        stats["tweets_without_text"] = int(len(tweet_ids))
        return frame, stats
    stats["rows"] = int(len(texts))
    texts = texts.copy()
    texts["tweet_id"] = texts["tweet_id"].astype(str)
    dup = texts["tweet_id"].duplicated(keep="first")
    stats["duplicate_ids"] = int(dup.sum())
    texts = texts[~dup]
    index = pd.Index(tweet_ids)
    node = index.get_indexer(texts["tweet_id"])
    stats["not_in_graph"] = int((node < 0).sum())
    texts.insert(0, "node", node.astype(np.int64))
    texts = texts[texts["node"] >= 0]
    text = texts["text"].fillna("").astype(str)
    empty = text.str.strip() == ""
    stats["empty_text"] = int(empty.sum())
    texts = texts.assign(text=text)[~empty].sort_values("node", kind="stable").reset_index(drop=True)
    stats["tweets_with_text"] = int(len(texts))
    stats["tweets_without_text"] = int(len(tweet_ids) - len(texts))
    cols = ["node", "tweet_id", "text"] + [c for c in texts.columns if c not in ("node", "tweet_id", "text")]
    return texts[cols], stats


def make_dgl_graph(ut: CSR, relations: Sequence[str], type_weights: dict, num_users: int, num_tweets: int):
    """The DGL heterograph of a user->tweet CSR (imports dgl and torch)."""
    import dgl
    import torch

    users = np.repeat(np.arange(num_users, dtype=np.int64), np.diff(ut.indptr))
    data, edata = {}, {}
    for r, name in enumerate(relations):
        keep = np.asarray(ut.etype) == r
        u = torch.from_numpy(users[keep])
        t = torch.from_numpy(np.asarray(ut.indices)[keep].astype(np.int64))
        data[("user", name, "tweet")] = (u, t)
        data[("tweet", f"rev_{name}", "user")] = (t, u)
        ed = {
            "time": torch.from_numpy(np.asarray(ut.time)[keep].copy()),
            "count": torch.from_numpy(np.asarray(ut.count)[keep].copy()),
            "weight": torch.full((int(keep.sum()),), float(type_weights[name]), dtype=torch.float32),
        }
        edata[name] = ed
        edata[f"rev_{name}"] = ed
    g = dgl.heterograph(data, num_nodes_dict={"user": num_users, "tweet": num_tweets})
    for etype, ed in edata.items():
        for k, v in ed.items():
            g.edges[etype].data[k] = v
    return g


def write_dgl(directory: Path, ut: CSR, relations: Sequence[str], type_weights: dict, num_users: int, num_tweets: int) -> None:
    """Save the DGL heterograph as ``directory/graph.dgl``."""
    import dgl

    g = make_dgl_graph(ut, relations, type_weights, num_users, num_tweets)
    dgl.save_graphs(str(directory / "graph.dgl"), [g])


def write_graph(
    out: str | os.PathLike,
    *,
    user_ids: Sequence[str],
    tweet_ids: Sequence[str],
    users,
    tweets,
    etypes,
    times,
    counts=None,
    relations: Sequence[str],
    type_weights: dict | None = None,
    texts=None,
    dropped: dict | None = None,
    extra: dict | None = None,
    write_dgl_binary: bool = True,
) -> GraphArtifact:
    """Canonicalise edges and write a complete graph artifact at ``out`` (atomically).

    ``users``/``tweets``/``etypes`` are integer node ids and type indices (into
    ``relations``); ``texts`` is a DataFrame with ``tweet_id``, ``text`` and optional label
    columns. ``dropped`` and ``extra`` go into the manifest.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    relations = list(relations)
    type_weights = {r: float((type_weights or {}).get(r, 1.0)) for r in relations}
    user_ids = np.asarray(user_ids, dtype=object)
    tweet_ids = np.asarray(tweet_ids, dtype=object)
    nu, nt, nr = len(user_ids), len(tweet_ids), len(relations)
    if nr > 127:
        raise InputError(f"{nr} engagement types; at most 127 are supported")
    u, t, e, tm, c, merged = canonical_edges(users, tweets, etypes, times, counts, nu, nt, nr)
    if len(u) == 0:
        raise InputError("no edges left to build a graph from (every row was dropped or the input is empty)")
    for name, arr, bound in (("user", u, nu), ("tweet", t, nt), ("engagement type", e, nr)):
        if arr.min() < 0 or arr.max() >= bound:
            raise ValueError(f"{name} ids must lie in [0, {bound}); got [{arr.min()}, {arr.max()}]")
    ut, tu = build_csrs(u, t, e, tm, c, nu, nt)
    text_frame, text_stats = attach_texts(texts, tweet_ids)
    num_edges = {r: int(n) for r, n in zip(relations, np.bincount(e, minlength=nr))}
    fingerprint = _hash_arrays(ut.indptr, ut.indices, ut.etype, ut.time, ut.count)
    fingerprint = _hash_strings([fingerprint, _hash_strings(user_ids), _hash_strings(tweet_ids), relations,
                                 _hash_strings(text_frame["text"]) if len(text_frame) else ""])
    manifest = {
        "kind": KIND,
        "schema_version": SCHEMA_VERSION,
        "created": now_iso(),
        "num_nodes": {"user": nu, "tweet": nt},
        "num_edges": num_edges,
        "relations": relations,
        "type_weights": type_weights,
        "duplicates_merged": int(merged),
        "dropped": dict(dropped or {}),
        "texts": text_stats,
        "time_range": [int(tm.min()), int(tm.max())],
        "fingerprint": fingerprint,
    }
    manifest.update(extra or {})
    with atomic_dir(out) as tmp:
        pq.write_table(pa.table({"user_id": pa.array(user_ids.astype(str), pa.string())}), tmp / "user_ids.parquet")
        pq.write_table(pa.table({"tweet_id": pa.array(tweet_ids.astype(str), pa.string())}), tmp / "tweet_ids.parquet")
        save_csr(tmp, "user_tweet", ut)
        save_csr(tmp, "tweet_user", tu)
        text_frame.to_parquet(tmp / "texts.parquet", index=False)
        if write_dgl_binary:
            write_dgl(tmp, ut, relations, type_weights, nu, nt)
        manifest["files"] = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file()) + ["manifest.json"]
        write_json(tmp / "manifest.json", manifest)
    log.info("wrote graph %s: %d users, %d tweets, %d edges", out, nu, nt, len(u))
    return GraphArtifact(out)
