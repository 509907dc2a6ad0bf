"""Write a graph artifact from integer edge arrays (the last step of `graph build`).

:func:`canonical_edges` de-duplicates (user, tweet, type) triples and sorts them;
:func:`write_graph` lays out GRAPH_DIR (see :mod:`graph.artifact`) atomically. Tests and
benchmarks use :func:`write_graph` directly to make graphs of known shape.
"""

from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

from numba import njit, prange

from coengage.artifacts import atomic_dir, now_iso, write_json
from coengage.errors import InputError
from graph.artifact import KIND, SCHEMA_VERSION, CSR, GraphArtifact, csr_paths, save_csr

log = logging.getLogger(__name__)


# ---- Numba kernels: plain arrays in, no Python objects -------------------------------------
#
# Both directions are built with parallel counting sorts: the rows are cut into ``n_parts``
# contiguous ranges, each range counts its keys (one histogram per part), and part p writes
# its rows after those of parts < p. So the result is the same as a serial stable counting
# sort whatever the number of threads.

@njit(parallel=True, cache=True, nogil=True)
def _part_histograms(keys, n_buckets, n_parts):
    """Per-part key counts: ``hist[p, k]`` = rows of part p with key k."""
    n = len(keys)
    hist = np.zeros((n_parts, n_buckets), np.int64)
    for p in prange(n_parts):
        h = hist[p]
        for i in range(n * p // n_parts, n * (p + 1) // n_parts):
            h[keys[i]] += 1
    return hist


@njit(cache=True, nogil=True)
def _part_starts(hist):
    """``(indptr int64[n_buckets+1], starts[p, k])``: where part p writes its first key-k row."""
    n_parts, n_buckets = hist.shape
    indptr = np.zeros(n_buckets + 1, np.int64)
    starts = np.empty((n_parts, n_buckets), np.int64)
    acc = np.int64(0)
    for k in range(n_buckets):
        indptr[k] = acc
        for p in range(n_parts):
            starts[p, k] = acc
            acc += hist[p, k]
    indptr[n_buckets] = acc
    return indptr, starts


@njit(parallel=True, cache=True, nogil=True)
def _scatter_rows(users, tweets, etypes, times, counts, has_counts, n_types, starts, keys, out_times, out_counts):
    """Group rows by user: the (tweet, etype) key as ``tweet * n_types + etype``, time, count."""
    n = len(users)
    n_parts = starts.shape[0]
    for p in prange(n_parts):
        pos = starts[p]
        for i in range(n * p // n_parts, n * (p + 1) // n_parts):
            u = users[i]
            o = pos[u]
            pos[u] = o + 1
            keys[o] = np.int64(tweets[i]) * n_types + np.int64(etypes[i])
            out_times[o] = times[i]
            out_counts[o] = counts[i] if has_counts else 1


@njit(inline="always")
def _sort_merge_segment(a, b, keys, times, counts):
    """Sort rows [a, b) by key, merge equal keys (latest time, summed count) to the front of the
    segment; returns how many are kept."""
    m = b - a
    if m <= 1:
        return m
    if m <= 32:  # insertion sort, carrying time and count
        for j in range(a + 1, b):
            k, t, c = keys[j], times[j], counts[j]
            q = j - 1
            while q >= a and keys[q] > k:
                keys[q + 1] = keys[q]
                times[q + 1] = times[q]
                counts[q + 1] = counts[q]
                q -= 1
            keys[q + 1] = k
            times[q + 1] = t
            counts[q + 1] = c
    else:
        order = np.argsort(keys[a:b], kind="mergesort")
        ks, ts, cs = keys[a:b].copy(), times[a:b].copy(), counts[a:b].copy()
        for j in range(m):
            keys[a + j] = ks[order[j]]
            times[a + j] = ts[order[j]]
            counts[a + j] = cs[order[j]]
    o = a
    for j in range(a + 1, b):
        if keys[j] == keys[o]:
            if times[j] > times[o]:
                times[o] = times[j]
            counts[o] += counts[j]
        else:
            o += 1
            keys[o] = keys[j]
            times[o] = times[j]
            counts[o] = counts[j]
    return o + 1 - a


@njit(parallel=True, cache=True, nogil=True)
def _sort_merge_segments(indptr, keys, times, counts, distinct, row_bounds):
    """Per user, :func:`_sort_merge_segment`; ``distinct[u]`` = edges kept. The users are cut
    into parts of about equal rows (``row_bounds``, :func:`_edge_rows`): users numbered by
    first appearance put the most active ones first, and an even split of the users left one
    thread with 70 % of the rows on the 10M benchmark (0.245 s; balanced 0.195 s)."""
    for p in prange(len(row_bounds) - 1):
        for u in range(row_bounds[p], row_bounds[p + 1]):
            distinct[u] = _sort_merge_segment(indptr[u], indptr[u + 1], keys, times, counts)


@njit(parallel=True, cache=True, nogil=True)
def _gather_segments(indptr, keys, times, counts, n_types, out_indptr, out_indices, out_etype, out_time, out_count):
    """Copy the merged front of each user's segment to the final CSR arrays."""
    for u in prange(len(indptr) - 1):
        a = indptr[u]
        o = out_indptr[u]
        for j in range(out_indptr[u + 1] - o):
            k = keys[a + j]
            out_indices[o + j] = np.int32(k // n_types)
            out_etype[o + j] = np.int8(k % n_types)
            out_time[o + j] = times[a + j]
            out_count[o + j] = counts[a + j]


@njit(cache=True, nogil=True)
def _edge_rows(indptr, n_parts, n_edges):
    """Row ranges of ``n_parts`` parts with about equal numbers of edges."""
    bounds = np.empty(n_parts + 1, np.int64)
    bounds[0] = 0
    bounds[n_parts] = len(indptr) - 1
    for p in range(1, n_parts):
        bounds[p] = np.searchsorted(indptr, n_edges * p // n_parts)
    return bounds


@njit(parallel=True, cache=True, nogil=True)
def _column_histograms(indptr, indices, row_bounds, n_cols):
    n_parts = len(row_bounds) - 1
    hist = np.zeros((n_parts, n_cols), np.int64)
    for p in prange(n_parts):
        h = hist[p]
        for j in range(indptr[row_bounds[p]], indptr[row_bounds[p + 1]]):
            h[indices[j]] += 1
    return hist


@njit(parallel=True, cache=True, nogil=True)
def _scatter_edges(indptr, key, other, time, count, row_bounds, starts, out_row, out_other, out_time, out_count):
    """A counting-sort scatter of a CSR's edges by ``key`` (one value per edge): each edge's row,
    ``other`` field, time and count, written at its key's next position. Part p of the rows
    writes after parts < p (``starts[p]`` from :func:`_part_starts`), so the order is stable.

    The transpose scatters by column (``key`` = indices, ``other`` = etype); the per-type
    grouping for graph.dgl by etype (``key`` = etype, ``other`` = indices)."""
    for p in prange(len(row_bounds) - 1):
        pos = starts[p]
        for r in range(row_bounds[p], row_bounds[p + 1]):
            for j in range(indptr[r], indptr[r + 1]):
                k = key[j]
                o = pos[k]
                out_row[o] = r
                out_other[o] = other[j]
                out_time[o] = time[j]
                out_count[o] = count[j]
                pos[k] = o + 1


_MIN_ROWS_PER_PART = 65536  # fewer rows than this per thread: one part (tests lower it)


def _n_parts(n_rows: int) -> int:
    import numba

    return max(1, min(int(numba.get_num_threads()), n_rows // _MIN_ROWS_PER_PART))


def _as(a, dtype) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype != dtype:
        if a.size and not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"expected integer ids, got dtype {a.dtype}")
        a = a.astype(dtype)
    return np.ascontiguousarray(a)


def _check_range(name: str, arr: np.ndarray, bound: int) -> None:
    if len(arr) and (arr.min() < 0 or arr.max() >= bound):
        raise ValueError(f"{name} ids must lie in [0, {bound}); got [{arr.min()}, {arr.max()}]")


def user_tweet_csr(users, tweets, etypes, times, counts=None, num_users=None, num_tweets=None, num_types=None):
    """De-duplicate (user, tweet, etype) rows into the user->tweet CSR (sorted by user, tweet, etype).

    Each edge keeps the latest time and the summed count (1 per raw row when ``counts`` is
    None). Returns ``(csr, merged)``: ``merged`` is how many rows were folded into another.
    Runs in O(rows) plus small per-user sorts (Numba, parallel over users).
    """
    return _user_tweet_csr([users, tweets, etypes, times, counts], num_users, num_tweets, num_types)


def _user_tweet_csr(rows: list, num_users=None, num_tweets=None, num_types=None,
                    scratch: list | None = None) -> tuple[CSR, int]:
    """:func:`user_tweet_csr` of ``rows = [users, tweets, etypes, times, counts]``.

    The list is emptied once the rows are grouped by user, so when the caller holds no other
    reference the input arrays are freed before the output arrays are allocated. With a
    ``scratch`` list, the three grouping buffers (13 bytes per row) are appended to it as
    uint8 arrays for the caller to reuse (see :class:`_Scratch`) instead of being freed.
    """
    users, tweets, etypes, times, counts = rows
    rows.clear()
    users = _as(users, np.int64 if np.asarray(users).dtype == np.int64 else np.int32)
    tweets = _as(tweets, np.int32)
    etypes = _as(etypes, np.int8)
    times = _as(times, np.int64)
    n = len(users)
    if not (len(tweets) == len(etypes) == len(times) == n):
        raise ValueError("users, tweets, etypes and times must have the same length")
    has_counts = counts is not None
    counts = _as(counts, np.int32) if has_counts else np.zeros(1, np.int32)
    if has_counts and len(counts) != n:
        raise ValueError("counts must have the same length as users")
    nu = int(num_users if num_users is not None else (users.max() + 1 if n else 0))
    nt = int(num_tweets if num_tweets is not None else (tweets.max() + 1 if n else 0))
    nr = int(num_types if num_types is not None else (etypes.max() + 1 if n else 0))
    _check_range("user", users, nu)
    _check_range("tweet", tweets, nt)
    _check_range("engagement type", etypes, max(nr, 1))
    n_types = max(nr, 1)
    parts = _n_parts(n)
    indptr, starts = _part_starts(_part_histograms(users, nu, parts))
    keys = np.empty(n, np.int64)
    g_times = np.empty(n, np.int64)
    g_counts = np.empty(n, np.int32)
    _scatter_rows(users, tweets, etypes, times, counts, has_counts, n_types, starts, keys, g_times, g_counts)
    del users, tweets, etypes, times, counts, starts
    distinct = np.empty(nu, np.int64)
    _sort_merge_segments(indptr, keys, g_times, g_counts, distinct, _edge_rows(indptr, parts, n))
    out_indptr = np.zeros(nu + 1, np.int64)
    np.cumsum(distinct, out=out_indptr[1:])
    del distinct
    e = int(out_indptr[-1])
    out = CSR(out_indptr, np.empty(e, np.int32), np.empty(e, np.int8), np.empty(e, np.int64), np.empty(e, np.int32))
    _gather_segments(indptr, keys, g_times, g_counts, n_types, out_indptr, out.indices, out.etype, out.time, out.count)
    if scratch is not None:
        scratch.extend(a.view(np.uint8) for a in (keys, g_times, g_counts))
    return out, int(n - e)


class _Scratch:
    """Hands out typed views of byte buffers that are no longer needed (the CSR build's grouping
    buffers), so later steps need no fresh memory: the 10M benchmark would otherwise allocate
    ~380 MB more for the transpose and the per-type grouping, and the kernel zeroes every new
    page (on the 2-core VM of the benchmarks up to ~1 ms of CPU per MiB for memory that has not
    been touched for a while).

    ``take(n, dtype)`` returns a view of ``n`` items from the first buffer with room and
    advances past it; :meth:`reset` makes every buffer free again (the caller must be done
    with the views by then). Falls back to ``np.empty`` when nothing fits, so ``_Scratch()``
    (no buffers) simply allocates.
    """

    def __init__(self, buffers=()):
        self.buffers = [b for b in buffers if b.dtype == np.uint8 and b.ndim == 1]
        self.used = [0] * len(self.buffers)

    def take(self, n: int, dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        need = int(n) * dtype.itemsize
        for i, buf in enumerate(self.buffers):
            start = -(-self.used[i] // 8) * 8  # 8-byte aligned
            if start + need <= len(buf):
                self.used[i] = start + need
                return buf[start:start + need].view(dtype)
        return np.empty(int(n), dtype)

    def reset(self) -> None:
        self.used = [0] * len(self.buffers)


def transpose_csr(csr: CSR, n_cols: int) -> CSR:
    """The tweet->user CSR of a user->tweet CSR (rows sorted by user, then etype, per tweet)."""
    return CSR(**dict(transpose_fields(csr, n_cols)))


def transpose_fields(csr: CSR, n_cols: int, scratch: "_Scratch | None" = None):
    """:func:`transpose_csr` as ``(field, array)`` pairs for indptr, indices, etype, time,
    count. The four edge fields are made in one pass; with ``scratch`` they are views into
    the scratch buffers (valid until the scratch is reused), else new arrays."""
    indptr, indices = np.asarray(csr.indptr), np.asarray(csr.indices)
    n = len(indices)
    parts = _n_parts(n)
    row_bounds = _edge_rows(indptr, parts, n)
    t_indptr, starts = _part_starts(_column_histograms(indptr, indices, row_bounds, int(n_cols)))
    scratch = scratch or _Scratch()
    scratch.reset()
    # largest first, so the scratch buffers (8 + 8 + 4 bytes per row) hold all four
    out = {field: scratch.take(n, dtype) for field, dtype in (("time", np.int64), ("indices", np.int32),
                                                              ("count", np.int32), ("etype", np.int8))}
    _scatter_edges(indptr, indices, np.asarray(csr.etype), np.asarray(csr.time), np.asarray(csr.count),
                   row_bounds, starts, out["indices"], out["etype"], out["time"], out["count"])
    return [("indptr", t_indptr)] + [(f, out[f]) for f in ("indices", "etype", "time", "count")]


def canonical_edges(users, tweets, etypes, times, counts=None, num_users=None, num_tweets=None, num_types=None):
    """Merge duplicate (user, tweet, etype) rows: latest time, summed count; sort by (user, tweet, etype).

    Returns ``(users int32, tweets int32, etypes int8, times int64, counts int32, merged)``
    where ``merged`` is how many input rows were folded into an earlier one.
    """
    ut, merged = user_tweet_csr(users, tweets, etypes, times, counts, num_users, num_tweets, num_types)
    u = np.repeat(np.arange(ut.n_rows, dtype=np.int32), np.diff(ut.indptr))
    return u, ut.indices, ut.etype, ut.time, ut.count, merged


def build_csrs(users, tweets, etypes, times, counts, num_users: int, num_tweets: int) -> tuple[CSR, CSR]:
    """Both CSR directions from canonical edges (sorted by user, tweet, etype)."""
    indptr = np.zeros(num_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(np.asarray(users, dtype=np.int64), minlength=num_users), out=indptr[1:])
    ut = CSR(indptr, np.ascontiguousarray(tweets, dtype=np.int32), np.ascontiguousarray(etypes, dtype=np.int8),
             np.ascontiguousarray(times, dtype=np.int64), np.ascontiguousarray(counts, dtype=np.int32))
    return ut, transpose_csr(ut, num_tweets)


def warm_kernels() -> None:
    """Load (or compile) the Numba kernels of :func:`write_graph` on tiny inputs with the
    build's dtypes, so a build can do it in a background thread while the logs stream."""
    ut, _ = user_tweet_csr(np.array([0, 1, 0], np.int32), np.array([1, 0, 1], np.int32), np.zeros(3, np.int8),
                           np.arange(3, dtype=np.int64), num_users=2, num_tweets=2, num_types=1)
    transpose_csr(ut, 2)
    _edges_by_type(ut, 1)


def _hash_arrays(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()[:16]


def _hash_strings(values) -> str:
    """sha256 of each value's UTF-8 bytes followed by NUL (one joined update: same digest, fast)."""
    h = hashlib.sha256()
    if isinstance(values, np.ndarray) and values.dtype == object:
        values = values.tolist()
    parts = [v if isinstance(v, str) else str(v) for v in values]
    if parts:
        h.update(("\x00".join(parts) + "\x00").encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:16]


def _hash_id_array(ids) -> str:
    """:func:`_hash_strings` of a pyarrow string array without nulls, from its buffers (no
    Python string per id): the same digest."""
    n = len(ids)
    if n == 0:
        return _hash_strings([])
    bufs = ids.buffers()
    off_type = np.int64 if _is_large_string(ids) else np.int32
    offsets = np.frombuffer(bufs[1], dtype=off_type, count=ids.offset + n + 1)[ids.offset:].astype(np.int64)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None and bufs[2].size else np.zeros(0, np.uint8)
    body = data[offsets[0]:offsets[-1]]
    joined = np.zeros(len(body) + n, np.uint8)  # each id's bytes followed by NUL
    keep = np.ones(len(joined), bool)
    keep[offsets[1:] - offsets[0] + np.arange(n)] = False
    joined[keep] = body
    h = hashlib.sha256()
    h.update(memoryview(joined))
    return h.hexdigest()[:16]


def _is_large_string(arr) -> bool:
    import pyarrow as pa

    return pa.types.is_large_string(arr.type)


def _id_array(ids):
    """Ids as a pyarrow string array without nulls (arrow input stays arrow: no Python strings)."""
    import pyarrow as pa

    if hasattr(ids, "type") and hasattr(ids, "buffers") and (pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type)) \
            and ids.null_count == 0:
        return ids
    return pa.array(_id_strings(ids), pa.string())


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


@njit(cache=True, nogil=True)
def _type_counts(etype, n_types):
    """Edges per engagement type (``np.bincount`` would first cast the int8 column to int64)."""
    counts = np.zeros(n_types, np.int64)
    for j in range(len(etype)):
        counts[etype[j]] += 1
    return counts


def _edges_by_type(ut: CSR, n_types: int, scratch: "_Scratch | None" = None, type_counts=None):
    """Edges of a user->tweet CSR grouped by etype: ``(bounds, src, dst, time, count)``.

    One pass, no per-relation copies: relation r is the slice ``bounds[r]:bounds[r+1]`` of
    each array (views). Ids are int32. A serial counting sort (:func:`_scatter_edges` with one
    part; split over threads it was slower). The outputs come from ``scratch`` when given,
    else numpy allocates them here (huge pages, like every large numpy array).
    ``type_counts`` (edges per type, :func:`_type_counts`) saves a pass when the caller has it.
    """
    indptr, etype = np.asarray(ut.indptr), np.asarray(ut.etype)
    n = len(etype)
    row_bounds = np.array([0, len(indptr) - 1], np.int64)
    if type_counts is None:
        type_counts = _type_counts(etype, int(n_types))
    bounds, starts = _part_starts(np.asarray(type_counts, np.int64).reshape(1, -1))
    scratch = scratch or _Scratch()
    scratch.reset()
    time, src, dst, count = (scratch.take(n, d) for d in (np.int64, np.int32, np.int32, np.int32))
    _scatter_edges(indptr, etype, np.asarray(ut.indices), np.asarray(ut.time), np.asarray(ut.count), row_bounds,
                   starts, src, dst, time, count)
    return bounds, src, dst, time, count


def forward_dgl_graph(ut: CSR, relations: Sequence[str], num_users: int, num_tweets: int):
    """The forward relations ``(user, T, tweet)`` only, int32 ids, edge data ``time`` and ``count``.

    This is what ``graph.dgl`` stores; :func:`with_reverse_and_weights` adds the rest at load.
    """
    return _forward_graph(_edges_by_type(ut, len(relations)), relations, num_users, num_tweets)


def _forward_graph(grouped, relations: Sequence[str], num_users: int, num_tweets: int):
    """:func:`forward_dgl_graph` from ``_edges_by_type``'s arrays (the CSR may be gone)."""
    import dgl
    import torch

    bounds, src, dst, time, count = grouped
    data, edata = {}, {}
    for r, name in enumerate(relations):
        a, b = int(bounds[r]), int(bounds[r + 1])
        data[("user", name, "tweet")] = (torch.from_numpy(src[a:b]), torch.from_numpy(dst[a:b]))
        edata[name] = {"time": torch.from_numpy(time[a:b]), "count": torch.from_numpy(count[a:b])}
    g = dgl.heterograph(data, num_nodes_dict={"user": num_users, "tweet": num_tweets}, idtype=torch.int32)
    for name, ed in edata.items():
        for k, v in ed.items():
            g.edges[name].data[k] = v
    return g


def with_reverse_and_weights(fwd, relations: Sequence[str], type_weights: dict, idtype=None):
    """Add ``(tweet, rev_T, user)`` per relation and the ``weight`` edge data (the type weight).

    The reverse relation shares the forward one's ``time``/``count``/``weight`` tensors.
    ``idtype`` (default: the forward graph's) sets the id type of the result.
    """
    import dgl
    import torch

    idtype = idtype or fwd.idtype
    data, edata = {}, {}
    for name in relations:
        u, t = fwd.edges(etype=("user", name, "tweet"), order="eid")
        u, t = u.to(idtype), t.to(idtype)
        data[("user", name, "tweet")] = (u, t)
        data[("tweet", f"rev_{name}", "user")] = (t, u)
        src = fwd.edges[("user", name, "tweet")].data
        ed = {"time": src["time"], "count": src["count"],
              "weight": torch.full((len(u),), float(type_weights[name]), dtype=torch.float32)}
        edata[name] = ed
        edata[f"rev_{name}"] = ed
    g = dgl.heterograph(data, num_nodes_dict={nt: fwd.num_nodes(nt) for nt in fwd.ntypes}, idtype=idtype)
    for etype, ed in edata.items():
        for k, v in ed.items():
            g.edges[etype].data[k] = v
    return g


def make_dgl_graph(ut: CSR, relations: Sequence[str], type_weights: dict, num_users: int, num_tweets: int):
    """The full DGL heterograph of a user->tweet CSR (imports dgl and torch): per type T the
    relations (user, T, tweet) and (tweet, rev_T, user), edge data time, count, weight; int64 ids."""
    import torch

    fwd = forward_dgl_graph(ut, relations, num_users, num_tweets)
    return with_reverse_and_weights(fwd, relations, type_weights, idtype=torch.int64)


def write_dgl(directory: Path, ut: CSR, relations: Sequence[str], type_weights: dict, num_users: int, num_tweets: int) -> None:
    """Save ``directory/graph.dgl``: forward relations only, int32 ids, COO only, time and count.

    The reverse relations and the weights are derived data; :func:`graph.dglgraph.load_dgl`
    adds them back, so the file is about a third of the full graph's size.
    """
    _save_forward_graph(directory, _edges_by_type(ut, len(relations)), relations, num_users, num_tweets)


def _save_forward_graph(directory: Path, grouped, relations: Sequence[str], num_users: int, num_tweets: int) -> None:
    """``graph.dgl`` in DGL's own format, written by graph.dglfile: no dgl/torch import in the build."""
    from graph.dglfile import write_forward_graph

    bounds, src, dst, time, count = grouped
    write_forward_graph(directory / "graph.dgl", relations, num_users, num_tweets, bounds, src, dst, time, count)


def _id_strings(ids) -> np.ndarray:
    """Ids as an object array of str (pyarrow arrays are converted without a Python loop)."""
    if hasattr(ids, "to_numpy") and hasattr(ids, "type"):  # pyarrow Array / ChunkedArray
        import pyarrow as pa

        if not pa.types.is_string(ids.type):
            ids = ids.cast(pa.string())
        return ids.to_numpy(zero_copy_only=False)
    ids = np.asarray(ids, dtype=object)
    if len(ids) and not all(isinstance(v, str) for v in ids.tolist()):
        ids = np.array([str(v) for v in ids.tolist()], dtype=object)
    return ids


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
    heldout: dict | None = None,
) -> GraphArtifact:
    """Canonicalise edges and write a complete graph artifact at ``out`` (atomically).

    ``users``/``tweets``/``etypes`` are integer node ids and type indices (into
    ``relations``); ``texts`` is a DataFrame with ``tweet_id``, ``text`` and optional label
    columns. ``dropped`` and ``extra`` go into the manifest. ``heldout`` (keyword arguments of
    :func:`graph.split.write_heldout`) adds the dev/test part inside the same atomic write.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    relations = list(relations)
    type_weights = {r: float((type_weights or {}).get(r, 1.0)) for r in relations}
    user_ids = _id_array(user_ids)
    tweet_ids = _id_array(tweet_ids)
    nu, nt, nr = len(user_ids), len(tweet_ids), len(relations)
    if nr > 127:
        raise InputError(f"{nr} engagement types; at most 127 are supported")
    if len(users) == 0:
        raise InputError("no edges left to build a graph from (every row was dropped or the input is empty)")
    rows = [users, tweets, etypes, times, counts]
    del users, tweets, etypes, times, counts  # freed inside once grouped, unless the caller keeps them
    buffers: list = []
    ut, merged = _user_tweet_csr(rows, nu, nt, nr, scratch=buffers)
    scratch = _Scratch(buffers)  # reused by the transpose and the per-type grouping below
    del buffers
    e, tm = ut.etype, ut.time
    n_edges = ut.n_edges
    # the fingerprint's sha256 passes (hashlib releases the GIL) run beside the writes below
    hashing = ThreadPoolExecutor(max_workers=1)
    arrays_hash = hashing.submit(_hash_arrays, ut.indptr, ut.indices, ut.etype, ut.time, ut.count)
    ids_hash = [hashing.submit(_hash_id_array, ids) for ids in (user_ids, tweet_ids)]
    text_frame, text_stats = attach_texts(texts, tweet_ids.to_numpy(zero_copy_only=False) if texts is not None else tweet_ids)
    type_counts = _type_counts(e, nr)
    num_edges = {r: int(n) for r, n in zip(relations, type_counts)}
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
    }
    manifest.update(extra or {})
    with atomic_dir(out) as tmp, ThreadPoolExecutor(max_workers=1) as writer:
        # The id maps and the user->tweet CSR are written by a second thread while this one
        # transposes: writing to the page cache is kernel CPU time, ~0.3 s for the CSR's 175 MB
        # on the benchmark VM, that the transpose would otherwise wait for.
        tu_paths = csr_paths(tmp, "tweet_user")
        tu_paths["indptr"].parent.mkdir(parents=True, exist_ok=True)  # (both directions' directory)
        written = [writer.submit(pq.write_table, pa.table({"user_id": user_ids.cast(pa.string())}), tmp / "user_ids.parquet"),
                   writer.submit(pq.write_table, pa.table({"tweet_id": tweet_ids.cast(pa.string())}), tmp / "tweet_ids.parquet"),
                   writer.submit(save_csr, tmp, "user_tweet", ut)]
        for field, arr in transpose_fields(ut, nt, scratch):  # in the scratch buffers
            np.save(tu_paths[field], arr)
            del arr
        text_frame.to_parquet(tmp / "texts.parquet", index=False)
        for f in written:  # (an error in the writer thread surfaces here)
            f.result()
        grouped = _edges_by_type(ut, nr, scratch, type_counts) if write_dgl_binary else None
        del ut, e, tm, scratch  # the DGL graph is made from the grouped edges: free the CSR first
        if grouped is not None:
            _save_forward_graph(tmp, grouped, relations, nu, nt)
            del grouped
        if heldout is not None:
            from graph.split import write_heldout

            manifest["split"] = write_heldout(tmp, update_manifest=False, **heldout)
        manifest["fingerprint"] = _hash_strings([
            arrays_hash.result(), ids_hash[0].result(), ids_hash[1].result(), relations,
            _hash_strings(text_frame["text"]) if len(text_frame) else ""])
        hashing.shutdown()
        manifest["files"] = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file()) + ["manifest.json"]
        write_json(tmp / "manifest.json", manifest)
    log.info("wrote graph %s: %d users, %d tweets, %d edges", out, nu, nt, n_edges)
    return GraphArtifact(out)
